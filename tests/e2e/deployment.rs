//! The deployment template (`infra/template.yaml`) against the code. cfn-lint checks the
//! template's own consistency but not what it promises the code (it does not look inside SAM
//! functions): table keys, environment variables, routes, binaries, auth and IAM actions.

use std::collections::BTreeSet;

use lemdash_shared::api::{Function, ROUTES};
use serde_norway::Value;

pub(crate) fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml"))
        .expect("infra/template.yaml exists");
    serde_norway::from_str(&text).expect("the template is YAML")
}

pub(crate) fn resources(t: &Value) -> impl Iterator<Item = (&str, &Value)> {
    t["Resources"].as_mapping().expect("Resources").iter().map(|(k, v)| (k.as_str().expect("a name"), v))
}

fn of_type<'a>(t: &'a Value, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
    resources(t).filter(move |(_, r)| r["Type"] == kind)
}

/// The value of a `!Tag value` node, when it is that tag.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => vec![],
    }
}

fn key_schema(table: &Value) -> Vec<(String, String)> {
    let p = &table["Properties"];
    let types: Vec<(String, String)> = p["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            (a["AttributeName"].as_str().unwrap().to_owned(), a["AttributeType"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(types.iter().all(|(_, t)| t == "S"), "lemdash's keys are strings");
    p["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap().to_owned(), k["KeyType"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn tables_have_the_keys_and_ttl_the_code_uses() {
    use lemdash_shared::limiter::dynamo as limiter;
    use lemdash_shared::snapshot::dynamo as snapshot;
    let t = template();
    let limiter_table = &t["Resources"]["LimiterTable"];
    assert_eq!(key_schema(limiter_table), [(limiter::PARTITION_KEY.to_owned(), "HASH".to_owned())]);
    assert_eq!(
        limiter_table["Properties"]["TimeToLiveSpecification"]["AttributeName"],
        limiter::TTL_ATTRIBUTE
    );
    let snapshots = &t["Resources"]["SnapshotTable"];
    assert_eq!(
        key_schema(snapshots),
        [
            (snapshot::PARTITION_KEY.to_owned(), "HASH".to_owned()),
            (snapshot::SORT_KEY.to_owned(), "RANGE".to_owned())
        ]
    );
    assert_eq!(snapshots["Properties"]["TimeToLiveSpecification"]["AttributeName"], snapshot::TTL_ATTRIBUTE);
    for (_, table) in of_type(&t, "AWS::DynamoDB::Table") {
        assert_eq!(table["Properties"]["BillingMode"], "PAY_PER_REQUEST");
    }
    // The refresh function is started by request items only.
    let events = &t["Resources"]["RefreshFunction"]["Properties"]["Events"];
    let pattern =
        events["Requested"]["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"].as_str().unwrap();
    let pattern: serde_json::Value = serde_json::from_str(pattern).unwrap();
    assert_eq!(pattern["dynamodb"]["Keys"]["sk"]["S"], serde_json::json!([snapshot::REQUEST_SORT_KEY]));
    assert_eq!(tagged(&events["Schedule"]["Properties"]["Schedule"], "!Ref").unwrap(), "RefreshSchedule");

    // The events table: the receiver's keys and TTL; only new events reach the fold.
    use lemdash_shared::hooks::dynamo as hooks;
    let table = &t["Resources"]["EventsTable"];
    assert_eq!(key_schema(table), [(hooks::PARTITION_KEY.to_owned(), "HASH".to_owned())]);
    let ttl = &table["Properties"]["TimeToLiveSpecification"];
    assert_eq!(
        (ttl["AttributeName"].as_str(), ttl["Enabled"].as_bool()),
        (Some(hooks::TTL_ATTRIBUTE), Some(true))
    );
    assert_eq!(
        table["Properties"]["StreamSpecification"]["StreamViewType"], "NEW_IMAGE",
        "the fold reads NewImage"
    );
    let delivered = &events["Delivered"]["Properties"];
    assert_eq!(tagged(&delivered["Stream"], "!GetAtt").unwrap(), "EventsTable.StreamArn");
    let pattern = delivered["FilterCriteria"]["Filters"][0]["Pattern"].as_str().unwrap();
    let pattern: serde_json::Value = serde_json::from_str(pattern).unwrap();
    assert_eq!(pattern["eventName"], serde_json::json!(["INSERT"]), "a rewritten item is no new event");
    assert_eq!(
        pattern["dynamodb"]["Keys"][hooks::PARTITION_KEY]["S"],
        serde_json::json!([{"prefix": hooks::EVENT_PREFIX}]),
        "events only, not hooks or counters"
    );
}

/// The workspace's Lambda binaries: the package names under `functions/` but the local runner.
fn workspace_binaries() -> BTreeSet<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions");
    std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter_map(|dir| std::fs::read_to_string(dir.path().join("Cargo.toml")).ok())
        .filter_map(|toml| {
            let line = toml.lines().find(|l| l.starts_with("name = "))?;
            Some(line.trim_start_matches("name = ").trim_matches('"').to_owned())
        })
        .filter(|name| name != "lemdash")
        .collect()
}

/// Function resource name → the binary it runs.
fn function_binaries(t: &Value) -> Vec<(String, String)> {
    of_type(t, "AWS::Serverless::Function")
        .map(|(name, f)| {
            assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda", "{name}");
            (name.to_owned(), f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn functions_run_the_workspace_binaries_on_arm64_with_only_variables_the_code_reads() {
    let t = template();
    let binaries: BTreeSet<String> = function_binaries(&t).into_iter().map(|(_, b)| b).collect();
    assert_eq!(binaries, workspace_binaries());
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(strings(&globals["Architectures"]), ["arm64"]);
    assert_eq!(globals["Handler"], "bootstrap");

    let global_env = globals["Environment"]["Variables"].as_mapping().unwrap();
    let mut all: Vec<&str> = global_env.keys().map(|k| k.as_str().unwrap()).collect();
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        if let Some(vars) = f["Properties"]["Environment"]["Variables"].as_mapping() {
            all.extend(vars.keys().map(|k| k.as_str().unwrap()));
        }
        assert_eq!(f["Properties"]["CodeUri"], "..", "{name}: the workspace root");
        assert!(tagged(&f["Properties"]["Role"], "!GetAtt").is_some(), "{name}: its own role");
    }
    for var in &all {
        assert!(lemdash_shared::config::ENV_VARS.contains(var), "the code never reads {var}");
    }
    assert!(!all.contains(&"LEMLIST_API_KEY"), "the key is never in an environment variable");
    for needed in ["LEMLIST_API_KEY_SECRET", "LIMITER_TABLE", "SNAPSHOT_TABLE"] {
        assert!(global_env.contains_key(needed), "{needed} for every function");
    }
    assert_eq!(tagged(&global_env["LIMITER_TABLE"], "!Ref").unwrap(), "LimiterTable");
    assert_eq!(tagged(&global_env["SNAPSHOT_TABLE"], "!Ref").unwrap(), "SnapshotTable");
}

#[test]
fn routes_go_to_the_functions_that_serve_them_and_need_a_jwt_unless_auth_is_off() {
    let t = template();
    let binaries = function_binaries(&t);
    let binary_of =
        |function: &str| binaries.iter().find(|(f, _)| f == function).map(|(_, b)| b.clone()).unwrap();
    let mut declared = BTreeSet::new();
    for (name, route) in of_type(&t, "AWS::ApiGatewayV2::Route") {
        let p = &route["Properties"];
        let key = p["RouteKey"].as_str().unwrap().to_owned();
        let target = tagged(&p["Target"], "!Sub").and_then(Value::as_str).unwrap();
        let integration = target.trim_start_matches("integrations/${").trim_end_matches('}');
        let uri = &t["Resources"][integration]["Properties"]["IntegrationUri"];
        let function = tagged(uri, "!GetAtt").and_then(Value::as_str).unwrap().trim_end_matches(".Arn");
        declared.insert((binary_of(function), key.clone()));

        let auth = &p["AuthorizationType"];
        if ROUTES.iter().any(|r| r.open && r.key() == key) {
            assert_eq!(auth, "NONE", "{name}: health checks and the console's page need no token");
            assert!(p["AuthorizerId"].is_null(), "{name}");
        } else if binary_of(function) == "lemdash-hooks" {
            assert_eq!(auth, "NONE", "{name}: lemlist cannot present a JWT");
            assert!(p["AuthorizerId"].is_null(), "{name}");
        } else {
            let choice = strings(tagged(auth, "!If").expect("auth follows AuthMode"));
            assert_eq!(choice, ["AuthEnabled", "JWT", "NONE"], "{name}");
        }
    }
    let mut expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|r| (r.function.binary().to_owned(), r.key())).collect();
    expected.insert(("lemdash-hooks".to_owned(), format!("POST {}", lemdash_shared::api::hooks::ROUTE)));
    assert_eq!(declared, expected);
    // The receiver's route has its own throttle, set on the stage by its route key.
    let throttled = &t["Resources"]["HttpApiStage"]["Properties"]["RouteSettings"]
        [format!("POST {}", lemdash_shared::api::hooks::ROUTE).as_str()];
    assert!(throttled["ThrottlingRateLimit"].as_u64().is_some_and(|r| r > 0), "the hooks route is throttled");

    assert_eq!(t["Parameters"]["AuthMode"]["Default"], "jwt", "auth is on unless turned off");
    for function in [Function::Campaigns, Function::Mailboxes] {
        let resource =
            binaries.iter().find(|(_, b)| b == function.binary()).map(|(f, _)| f.as_str()).unwrap();
        let required = &t["Resources"][resource]["Properties"]["Environment"]["Variables"]["AUTH_REQUIRED"];
        assert_eq!(strings(tagged(required, "!If").unwrap()), ["AuthEnabled", "true", "false"], "{resource}");
    }
}

#[test]
fn each_role_grants_the_dynamodb_actions_the_code_calls_and_no_more() {
    let t = template();
    let actions_on = |statements: &[Value], table: &str| -> BTreeSet<String> {
        statements
            .iter()
            .filter(|s| {
                let resource = &s["Resource"];
                tagged(resource, "!GetAtt").and_then(Value::as_str) == Some(&format!("{table}.Arn"))
            })
            .flat_map(|s| strings(&s["Action"]))
            .collect()
    };
    let limiter: BTreeSet<String> =
        lemdash_shared::limiter::dynamo::ACTIONS.iter().map(|a| a.to_string()).collect();
    let snapshots: BTreeSet<String> =
        lemdash_shared::snapshot::dynamo::ACTIONS.iter().map(|a| a.to_string()).collect();
    let roles: Vec<_> = of_type(&t, "AWS::IAM::Role").collect();
    assert_eq!(roles.len(), 4, "one role per function");
    for (name, role) in roles {
        let statements =
            role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].as_sequence().unwrap();
        let (limiter, snapshots) = if name == "HooksRole" {
            (BTreeSet::new(), BTreeSet::new()) // no key, no limiter, no dashboards
        } else {
            (limiter.clone(), snapshots.clone())
        };
        assert_eq!(actions_on(statements, "LimiterTable"), limiter, "{name}");
        assert_eq!(actions_on(statements, "SnapshotTable"), snapshots, "{name}");
        for s in statements {
            for action in strings(&s["Action"]) {
                assert!(!action.ends_with('*'), "{name}: no wildcard actions ({action})");
            }
        }
    }
}

/// Who may touch the events table, by action and key prefix (IAM's `dynamodb:LeadingKeys`):
/// only the receiver writes events and counters and it reads nothing but hooks; the refresh
/// function writes hooks only; the campaigns function reads the counters; nobody else anything.
#[test]
fn only_the_receiver_writes_events_and_it_cannot_read_the_key() {
    use lemdash_shared::hooks::dynamo::{ACTIONS, COUNTERS_PREFIX, EVENT_PREFIX, HOOK_PREFIX};
    let t = template();
    let mut grants: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (name, role) in of_type(&t, "AWS::IAM::Role") {
        let statements =
            role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].as_sequence().unwrap();
        for s in statements {
            if tagged(&s["Resource"], "!GetAtt").and_then(Value::as_str) != Some("EventsTable.Arn") {
                continue;
            }
            let condition = &s["Condition"];
            let keys = strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
                .into_iter()
                .chain(strings(&condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]))
                .collect::<Vec<_>>();
            assert_eq!(keys.len(), 1, "{name}: every grant on the events table names its keys");
            for action in strings(&s["Action"]) {
                assert!(ACTIONS.contains(&action.as_str()), "{name}: {action} is not called");
                grants.insert((name.to_owned(), action, keys[0].clone()));
            }
        }
        if name == "HooksRole" {
            let text = format!("{:?}", role["Properties"]["Policies"]);
            assert!(!text.contains("secretsmanager"), "the receiver cannot read the key");
            assert!(!text.contains("sns:"), "nor publish");
        }
    }
    let hooks = format!("{HOOK_PREFIX}*");
    let events = format!("{EVENT_PREFIX}*");
    let counters = format!("{COUNTERS_PREFIX}*");
    let grant = |role: &str, action: &str, keys: &str| {
        (role.to_owned(), format!("dynamodb:{action}"), keys.to_owned())
    };
    let expected = BTreeSet::from([
        grant("HooksRole", "GetItem", &hooks),
        grant("HooksRole", "PutItem", &events),
        grant("HooksRole", "UpdateItem", &counters),
        grant("RefreshRole", "GetItem", &hooks),
        grant("RefreshRole", "PutItem", &hooks),
        grant("RefreshRole", "DeleteItem", &hooks),
        grant("CampaignsRole", "BatchGetItem", &counters),
    ]);
    assert_eq!(grants, expected);
    let hooks_env = &t["Resources"]["HooksFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(tagged(&hooks_env["EVENTS_TABLE"], "!Ref").and_then(Value::as_str), Some("EventsTable"));
    // lemlist is told this API's own URL, which routes to the receiver.
    for function in ["RefreshFunction", "CampaignsFunction"] {
        let url = &t["Resources"][function]["Properties"]["Environment"]["Variables"]["LEMDASH_PUBLIC_URL"];
        let choice =
            tagged(url, "!If").and_then(Value::as_sequence).expect("LEMDASH_PUBLIC_URL follows Webhooks");
        assert_eq!(choice[0], "WebhooksOn", "{function}");
        let api_url = tagged(&t["Outputs"]["ApiUrl"]["Value"], "!Sub");
        assert_eq!(tagged(&choice[1], "!Sub"), api_url, "{function}: the API's own URL");
    }
}

/// `cargo lambda watch` sends each path to the function that serves it behind API Gateway: the
/// router in the workspace's Cargo.toml is the route table's.
#[test]
fn the_watch_router_is_the_route_table() {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
    let section = manifest
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("the workspace declares a watch router");
    let declared: BTreeSet<(String, String)> = section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(path, binary)| {
            (path.trim().trim_matches('"').to_owned(), binary.trim().trim_matches('"').to_owned())
        })
        .collect();
    let expected: BTreeSet<(String, String)> =
        ROUTES.iter().map(|r| (r.path.to_owned(), r.function.binary().to_owned())).collect();
    assert_eq!(declared, expected);
}

/// Every part of the HTTP API the code relies on: payload format 2.0 (the adapter reads
/// `requestContext` in that shape), an integration timeout above the request budget, the JWT
/// authorizer on the Authorization header, and CORS headers that are the code's own.
#[test]
fn the_http_api_is_wired_as_the_code_expects() {
    let t = template();
    let integrations: Vec<_> = of_type(&t, "AWS::ApiGatewayV2::Integration").collect();
    assert_eq!(integrations.len(), 3);
    for (name, i) in &integrations {
        let p = &i["Properties"];
        assert_eq!(p["PayloadFormatVersion"], "2.0", "{name}");
        assert_eq!(p["IntegrationType"], "AWS_PROXY", "{name}");
        // HTTP APIs allow 30 s at most (the default): the request budget must end before.
        let timeout_ms = p["TimeoutInMillis"].as_u64().unwrap_or(30_000);
        assert!(timeout_ms <= 30_000, "{name}");
        let function =
            tagged(&p["IntegrationUri"], "!GetAtt").and_then(Value::as_str).unwrap().trim_end_matches(".Arn");
        let f = &t["Resources"][function]["Properties"];
        let lambda_timeout = f["Timeout"].as_u64().unwrap();
        if function == "HooksFunction" {
            // It makes one or two DynamoDB writes and no lemlist call: no request budget.
            assert!(lambda_timeout * 1000 <= timeout_ms, "{name}: the function ends before the integration");
            continue;
        }
        let budget = f["Environment"]["Variables"]["REQUEST_BUDGET_SECS"].as_u64().expect("a request budget");
        assert!(budget * 1000 < timeout_ms, "{name}: the budget ends before API Gateway gives up");
        assert!(budget < lambda_timeout, "{name}: and before the function is stopped");
    }

    let authorizer = &t["Resources"]["JwtAuthorizer"];
    assert_eq!(authorizer["Condition"], "AuthEnabled");
    let p = &authorizer["Properties"];
    assert_eq!(
        (p["AuthorizerType"].as_str(), strings(&p["IdentitySource"])),
        (Some("JWT"), vec!["$request.header.Authorization".to_owned()])
    );
    assert_eq!(tagged(&p["JwtConfiguration"]["Issuer"], "!Ref").unwrap(), "JwtIssuer");
    assert_eq!(tagged(&p["JwtConfiguration"]["Audience"], "!Ref").unwrap(), "JwtAudience");
    for (name, route) in of_type(&t, "AWS::ApiGatewayV2::Route") {
        let id = &route["Properties"]["AuthorizerId"];
        let key = route["Properties"]["RouteKey"].as_str().unwrap();
        if ROUTES.iter().any(|r| r.open && r.key() == key) || name == "HooksRoute" {
            continue;
        }
        let choice = tagged(id, "!If").and_then(Value::as_sequence).expect("the authorizer follows AuthMode");
        assert_eq!(tagged(&choice[1], "!Ref").unwrap(), "JwtAuthorizer", "{name}");
    }

    let cors = &t["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let sorted = |v: &Value| {
        let mut s = strings(v);
        s.sort();
        s
    };
    assert_eq!(sorted(&cors["ExposeHeaders"]), lemdash_shared::api::EXPOSED_HEADERS.to_vec());
    assert_eq!(sorted(&cors["AllowHeaders"]), lemdash_shared::api::ALLOWED_HEADERS.to_vec());
    assert_eq!(tagged(&cors["AllowOrigins"], "!Ref").unwrap(), "AllowedOrigins");
}

/// The snapshot table streams new images (the refresh function reads `NewImage`), and both
/// tables expire items on the attribute the code writes.
#[test]
fn the_snapshot_stream_and_ttl_are_what_the_code_reads_and_writes() {
    let t = template();
    let snapshots = &t["Resources"]["SnapshotTable"]["Properties"];
    assert_eq!(snapshots["StreamSpecification"]["StreamViewType"], "NEW_IMAGE");
    for (table, attribute) in [
        ("SnapshotTable", lemdash_shared::snapshot::dynamo::TTL_ATTRIBUTE),
        ("LimiterTable", lemdash_shared::limiter::dynamo::TTL_ATTRIBUTE),
    ] {
        let ttl = &t["Resources"][table]["Properties"]["TimeToLiveSpecification"];
        assert_eq!(
            (ttl["Enabled"].as_bool(), ttl["AttributeName"].as_str()),
            (Some(true), Some(attribute)),
            "{table}"
        );
    }
    let mapping = of_type(&t, "AWS::Serverless::Function")
        .find(|(_, f)| f["Metadata"]["BuildProperties"]["Binary"] == "lemdash-refresh")
        .and_then(|(_, f)| {
            f["Properties"]["Events"]
                .as_mapping()
                .unwrap()
                .values()
                .find(|e| e["Type"] == "DynamoDB")
                .cloned()
        })
        .expect("the refresh function reads the snapshot table's stream");
    assert_eq!(tagged(&mapping["Properties"]["Stream"], "!GetAtt").unwrap(), "SnapshotTable.StreamArn");
}

/// Beyond DynamoDB, each role may write to its own log group, read its one secret, and (the
/// refresh) read its one stream; `dynamodb:ListStreams` on `*` is the one wildcard, as the
/// event source mapping requires.
#[test]
fn each_roles_other_statements_are_scoped_to_their_one_resource() {
    let t = template();
    let log_group_of = |role: &str| -> String {
        of_type(&t, "AWS::Serverless::Function")
            .find(|(_, f)| {
                tagged(&f["Properties"]["Role"], "!GetAtt").and_then(Value::as_str)
                    == Some(&format!("{role}.Arn"))
            })
            .map(|(_, f)| {
                tagged(&f["Properties"]["LoggingConfig"]["LogGroup"], "!Ref")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .expect("the role belongs to a function")
    };
    for (name, role) in of_type(&t, "AWS::IAM::Role") {
        let statements =
            role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].as_sequence().unwrap();
        for s in statements {
            let actions = strings(&s["Action"]);
            let resource = &s["Resource"];
            if actions.iter().all(|a| {
                a.starts_with("dynamodb:")
                    && a != "dynamodb:ListStreams"
                    && !a.contains("Stream")
                    && a != "dynamodb:GetRecords"
                    && a != "dynamodb:GetShardIterator"
            }) {
                continue; // checked against the code by `each_role_grants_the_dynamodb_actions_the_code_calls_and_no_more`
            }
            if actions.iter().any(|a| a.starts_with("logs:")) {
                let sub = tagged(resource, "!Sub").and_then(Value::as_str).unwrap_or_default();
                let group = log_group_of(name);
                assert_eq!(sub, format!("${{{group}.Arn}}:*"), "{name}: logs only to its own group");
            } else if actions == ["secretsmanager:GetSecretValue"] {
                let sub = tagged(resource, "!Sub").and_then(Value::as_str).unwrap();
                assert!(
                    sub.contains(":secret:${LemlistApiKeySecretName}-??????"),
                    "{name}: the one secret: {sub}"
                );
            } else if actions == ["dynamodb:ListStreams"] {
                assert_eq!(resource, "*", "{name}");
            } else if actions == ["sns:Publish"] {
                assert_eq!(name, "RefreshRole", "only the refresh publishes alerts");
                assert_eq!(tagged(resource, "!Ref").and_then(Value::as_str), Some("AlertTopic"), "{name}");
            } else {
                assert_eq!(name, "RefreshRole", "only the refresh reads streams: {actions:?}");
                let stream = tagged(resource, "!GetAtt").and_then(Value::as_str);
                assert!(
                    matches!(stream, Some("SnapshotTable.StreamArn" | "EventsTable.StreamArn")),
                    "{name}: {actions:?} on {stream:?}"
                );
            }
        }
    }
}

/// The alarms count log lines by their message: the patterns match the lines the code writes
/// in its Lambda JSON format (a 429 from lemlist, a stored refresh), captured from a run.
#[tokio::test(flavor = "current_thread")]
async fn the_alarms_metric_filters_match_the_lines_the_code_writes() {
    use lemlist_sim::{LimitMode, Profile, Settings};
    let (captured, _guard) = crate::support::capture_logs();
    let sim =
        crate::support::sim(Profile::S, 52, Settings { limit: LimitMode::Anchored, ..Settings::default() })
            .await;
    let client = crate::support::unpaced_client(&sim);
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let client = client.clone();
        burst.spawn(async move { client.team().await.map(drop) });
    }
    while burst.join_next().await.is_some() {}
    assert!(sim.log().rate_limited() > 0, "the burst met a 429");
    let api = crate::support::api(&sim, &client, std::time::Duration::from_secs(60));
    api.refresher().run().await.unwrap();

    let lines: Vec<serde_json::Value> = captured
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect();
    let t = template();
    // The webhook misses' filter is matched by the webhooks test, which drops deliveries.
    let filters: Vec<_> =
        of_type(&t, "AWS::Logs::MetricFilter").filter(|(name, _)| *name != "HookMissesFilter").collect();
    assert_eq!(filters.len(), 3, "one per function with lemlist calls, all for the 429s");
    for (name, f) in filters {
        let pattern = f["Properties"]["FilterPattern"].as_str().unwrap();
        // `{ $.field = "value" }`: the one form the template uses.
        let inner = pattern.trim().strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap().trim();
        let (field, value) = inner.split_once('=').unwrap();
        let field = field.trim().strip_prefix("$.").unwrap();
        let value = value.trim().trim_matches('"');
        let matched = lines.iter().filter(|l| l[field] == value).count();
        assert!(
            matched > 0,
            "{name}: {pattern} matches no line the code wrote: {:?}",
            lines.iter().filter_map(|l| l["message"].as_str()).collect::<std::collections::BTreeSet<_>>()
        );
    }
}

/// Each alarm watches a metric that exists: one a metric filter of the template creates, or one
/// of Lambda's own metrics of one of the template's functions. Only the 429s need a custom
/// metric (billed monthly); the others are free.
#[test]
fn every_alarm_watches_a_metric_the_stack_produces() {
    let t = template();
    let custom: BTreeSet<String> = of_type(&t, "AWS::Logs::MetricFilter")
        .flat_map(|(_, f)| f["Properties"]["MetricTransformations"].as_sequence().unwrap().iter())
        .map(|m| format!("{}/{}", m["MetricNamespace"].as_str().unwrap(), m["MetricName"].as_str().unwrap()))
        .collect();
    assert_eq!(custom, BTreeSet::from(["lemdash/HookMisses".to_owned(), "lemdash/Lemlist429".to_owned()]));
    let alarms: Vec<_> = of_type(&t, "AWS::CloudWatch::Alarm").collect();
    assert_eq!(alarms.len(), 4);
    for (name, alarm) in alarms {
        let p = &alarm["Properties"];
        let metric = format!("{}/{}", p["Namespace"].as_str().unwrap(), p["MetricName"].as_str().unwrap());
        if p["Namespace"] == "AWS/Lambda" {
            assert!(
                ["AWS/Lambda/Errors", "AWS/Lambda/Invocations"].contains(&metric.as_str()),
                "{name}: {metric}"
            );
            let dimension = &p["Dimensions"][0];
            assert_eq!(dimension["Name"].as_str(), Some("FunctionName"), "{name}");
            let function = tagged(&dimension["Value"], "!Ref").and_then(Value::as_str).unwrap();
            assert_eq!(
                t["Resources"][function]["Type"].as_str(),
                Some("AWS::Serverless::Function"),
                "{name}"
            );
        } else {
            assert!(custom.contains(&metric), "{name}: {metric} is no metric filter's");
        }
        assert_eq!(
            tagged(&p["AlarmActions"][0], "!Ref").and_then(Value::as_str),
            Some("AlarmTopic"),
            "{name}"
        );
    }
}

/// Mailbox-health alerts have their own topic (not the operators' alarms), which the refresh
/// function is told of, with an optional e-mail subscription.
#[test]
fn alerts_go_to_their_own_topic_named_to_the_refresh_function() {
    let t = template();
    let variables = &t["Resources"]["RefreshFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(tagged(&variables["ALERT_TOPIC_ARN"], "!Ref").and_then(Value::as_str), Some("AlertTopic"));
    assert_eq!(
        tagged(&variables["ALERT_BOUNCE_RATE"], "!Ref").and_then(Value::as_str),
        Some("AlertBounceRate")
    );
    assert_eq!(tagged(&variables["ALERT_MIN_SENT"], "!Ref").and_then(Value::as_str), Some("AlertMinSent"));
    assert_eq!(t["Resources"]["AlertTopic"]["Type"].as_str(), Some("AWS::SNS::Topic"));
    let subscription = &t["Resources"]["AlertEmailSubscription"];
    assert_eq!(subscription["Condition"].as_str(), Some("HasAlertEmail"), "only with an address");
    assert_eq!(
        tagged(&subscription["Properties"]["TopicArn"], "!Ref").and_then(Value::as_str),
        Some("AlertTopic")
    );
    assert_eq!(t["Parameters"]["AlertBounceRate"]["Default"].as_str(), Some("5"));
    assert_eq!(t["Parameters"]["AlertMinSent"]["Default"].as_u64(), Some(50));
}
