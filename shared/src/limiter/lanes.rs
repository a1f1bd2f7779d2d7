//! The shared budget's arithmetic: twenty lanes, each a pacer of one request per 2.2 s.
//!
//! One store item per API key holds, for each lane, the earliest time its next request may be
//! sent, and a `paused_until` time that lemlist's own signals (a 429, `Remaining: 0`) push
//! forward. A caller reserves a *slot* on one lane by a conditional write whose condition is
//! exactly [`LaneState::try_reserve`]: the lane must be free at the slot and the key not paused.
//! The write moves the lane on by one lane period, so on every lane two slots are at least
//! 2.2 s apart, whoever wrote them and whatever their clocks said.
//!
//! Why that keeps lemlist's limit: a request leaves when its process's clock reads the slot, so
//! with clocks within ±20 ms of each other and network jitter under 100 ms, two arrivals from one
//! lane are at least 2.2 s − 40 ms − 100 ms = 2.06 s apart. Any 2-second interval therefore
//! holds at most one arrival per lane: at most 20. And because the twenty lanes are independent,
//! an idle key lets a burst of 20 go at once, then 20 every 2.2 s (9.1 per second).

/// How many lanes: lemlist's 20 requests per window.
pub const LANES: usize = 20;
/// Spacing of two slots on one lane: lemlist's 2 s window plus 10 % for clocks and jitter.
pub const LANE_PERIOD_MS: i64 = 2200;
/// How late a request may leave after its slot. A slot found to have passed by more (the write
/// or the wake-up was slow) is left unused and another one reserved: a late send would bring
/// two arrivals of one lane closer than the margin allows. 2.2 s − 50 ms late − 40 ms of clock
/// offsets − 100 ms of network jitter still leaves 2.01 s between two arrivals of one lane.
pub const MAX_LATE_MS: i64 = 50;
/// When every lane is busy and a reservation has just lost a race, the next try takes one of
/// this many earliest lanes at random, so that processes reserving at the same moment stop
/// picking the same lane.
pub const SPREAD: usize = 5;
/// A pause that would move `paused_until` by less than this is the same episode, already paused:
/// answers from one server window estimate its reset within a second of each other (the headers
/// are given to the second).
pub const PAUSE_SLACK_MS: i64 = 1000;

/// What the store holds for one key (or a process's last view of it). Times are epoch ms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneState {
    /// For each lane, when it is next free; `None` when the lane was never used.
    pub lanes: [Option<i64>; LANES],
    pub paused_until: Option<i64>,
    /// How many pauses took effect (for observability and tests).
    pub pauses: u64,
}

/// A slot on a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub lane: usize,
    /// When the request may be sent, epoch ms.
    pub slot: i64,
}

impl LaneState {
    /// A slot this view allows at `now`. On a free lane if there is one (`pick`, a random
    /// number, chooses which, so that processes with the same view rarely collide); otherwise
    /// on the earliest lane, or with `spread` (after a lost race) on one of the [`SPREAD`]
    /// earliest.
    pub fn plan(&self, now: i64, pick: usize, spread: bool) -> Reservation {
        self.plan_within(now, pick, spread, LANES)
    }

    /// The same on the first `usable` lanes only (1 to [`LANES`]): the budget share that
    /// scheduled and background work keeps to, leaving the other lanes free for people.
    pub fn plan_within(&self, now: i64, pick: usize, spread: bool, usable: usize) -> Reservation {
        let usable = usable.clamp(1, LANES);
        let floor = self.paused_until.map_or(now, |p| p.max(now));
        let free: Vec<usize> = (0..usable).filter(|&i| self.lanes[i].is_none_or(|t| t <= floor)).collect();
        if !free.is_empty() {
            return Reservation { lane: free[pick % free.len()], slot: floor };
        }
        let mut busy: Vec<(i64, usize)> =
            self.lanes[..usable].iter().enumerate().map(|(i, t)| (t.unwrap_or(i64::MIN), i)).collect();
        busy.sort_unstable();
        let (next, lane) = if spread { busy[pick % SPREAD.min(usable)] } else { busy[0] };
        Reservation { lane, slot: next.max(floor) }
    }

    /// The store's conditional update: take `r` if the lane is free and the key not paused at
    /// the slot. The DynamoDB adapter states the same condition as an expression.
    pub fn try_reserve(&mut self, r: Reservation) -> bool {
        let lane_free = self.lanes[r.lane].is_none_or(|t| t <= r.slot);
        let not_paused = self.paused_until.is_none_or(|p| p <= r.slot);
        if lane_free && not_paused {
            self.lanes[r.lane] = Some(r.slot + LANE_PERIOD_MS);
        }
        lane_free && not_paused
    }

    /// The store's conditional pause: move `paused_until` to `resume` unless it already reaches
    /// within [`PAUSE_SLACK_MS`] of it.
    pub fn try_pause(&mut self, resume: i64) -> bool {
        let later = self.paused_until.is_none_or(|p| p < resume - PAUSE_SLACK_MS);
        if later {
            self.paused_until = Some(resume);
            self.pauses += 1;
        }
        later
    }

    /// When the caller with `ahead` others before it in line can expect its slot, judging by
    /// this view: the lanes are taken in order of their free times, twenty per lane period.
    /// Others may have reserved since, so this is a lower bound: enough to refuse at once a
    /// caller that cannot make its deadline.
    pub fn earliest_slot_for(&self, now: i64, ahead: usize) -> i64 {
        self.earliest_slot_within(now, ahead, LANES)
    }

    /// The same on the first `usable` lanes only.
    pub fn earliest_slot_within(&self, now: i64, ahead: usize, usable: usize) -> i64 {
        let usable = usable.clamp(1, LANES);
        let floor = self.paused_until.map_or(now, |p| p.max(now));
        let mut free: Vec<i64> =
            self.lanes[..usable].iter().map(|t| t.unwrap_or(i64::MIN).max(floor)).collect();
        free.sort_unstable();
        let rounds = (ahead / usable) as i64;
        free[ahead % usable] + rounds * LANE_PERIOD_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn an_idle_key_allows_twenty_at_once_then_one_per_lane_period() {
        let mut s = LaneState::default();
        let now = 1_000_000;
        for i in 0..LANES {
            let r = s.plan(now, i * 7, false);
            assert_eq!(r.slot, now);
            assert!(s.try_reserve(r));
        }
        for pick in 0..SPREAD {
            let r = s.plan(now, pick, true);
            assert_eq!(r.slot, now + LANE_PERIOD_MS, "the 21st waits one lane period");
        }
    }

    #[test]
    fn a_stale_view_loses_the_race_and_learns() {
        let mut store = LaneState::default();
        let stale = store.clone();
        let r = stale.plan(0, 0, false);
        assert!(store.try_reserve(r));
        assert!(!store.clone().try_reserve(Reservation { lane: r.lane, slot: 10 }), "lane taken");
        let next = store.plan(10, 0, true);
        assert!(next.lane != r.lane || next.slot >= LANE_PERIOD_MS);
    }

    #[test]
    fn pauses_hold_every_lane_and_repeat_pauses_of_one_episode_are_absorbed() {
        let mut s = LaneState::default();
        assert!(s.try_pause(5_000));
        assert!(!s.try_pause(5_900), "the same episode");
        assert!(s.clone().try_pause(6_001), "a later episode");
        assert!(!s.try_pause(4_000), "an earlier resume never shortens a pause");
        assert_eq!(s.pauses, 1);
        assert_eq!(s.plan(1_000, 3, false).slot, 5_000);
        assert!(!s.try_reserve(Reservation { lane: 0, slot: 4_999 }));
        assert!(s.try_pause(7_000));
        assert_eq!(s.pauses, 2);
    }

    #[test]
    fn the_expected_slot_grows_with_the_line() {
        let mut s = LaneState::default();
        assert_eq!(s.earliest_slot_for(100, 0), 100);
        assert_eq!(s.earliest_slot_for(100, 19), 100, "twenty go at once");
        assert_eq!(s.earliest_slot_for(100, 20), 100 + LANE_PERIOD_MS);
        assert_eq!(s.earliest_slot_for(100, 45), 100 + 2 * LANE_PERIOD_MS);
        s.paused_until = Some(5_000);
        assert_eq!(s.earliest_slot_for(100, 0), 5_000);
    }

    fn max_in_window(times: &mut [i64], window: i64) -> usize {
        times.sort_unstable();
        let (mut best, mut lo) = (0, 0);
        for hi in 0..times.len() {
            while times[hi] >= times[lo] + window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// A fake-clock model of many processes sharing one key through the store: random demand,
    /// random interleavings of who writes first (each writer holds a possibly stale view, as
    /// after `ALL_NEW`/`ALL_OLD`), random pauses, clock offsets of ±20 ms per process, wake-ups
    /// up to 80 ms late (a send more than [`MAX_LATE_MS`] late is given up and planned again, as
    /// the limiter does) and network jitter up to 100 ms. No interval of 2 s ever sees more than
    /// 20 arrivals.
    #[test]
    fn property_never_more_than_twenty_arrivals_in_any_two_seconds() {
        let mut total_discarded = 0;
        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let processes = rng.random_range(1..=8usize);
            let offsets: Vec<i64> = (0..processes).map(|_| rng.random_range(-20..=20)).collect();
            let mut views = vec![LaneState::default(); processes];
            let mut store = LaneState::default();
            let mut real_now: i64 = 1_700_000_000_000;
            let mut arrivals = Vec::new();
            let mut sends = Vec::new();
            let mut discarded = 0;
            let mut conflicts = 0;
            for _ in 0..600 {
                // Time moves on by a random step; demand comes in bursts.
                real_now +=
                    if rng.random_bool(0.1) { rng.random_range(0..4000) } else { rng.random_range(0..30) };
                let p = rng.random_range(0..processes);
                let mut now = real_now + offsets[p];
                if rng.random_bool(0.02) {
                    store.try_pause(now + rng.random_range(500..3000));
                }
                // Retry until a reservation sticks, learning the store's state on each failure.
                let mut lost = false;
                loop {
                    let r = views[p].plan(now, rng.random::<u32>() as usize, lost);
                    let won = store.try_reserve(r);
                    views[p] = store.clone();
                    if won {
                        // The process sleeps until its own clock reads the slot, and wakes up
                        // late by up to 80 ms.
                        let late = rng.random_range(0..=80);
                        if late > MAX_LATE_MS {
                            // Too late to use the slot: it is given up; plan again from now.
                            discarded += 1;
                            now = r.slot + late;
                            lost = false;
                            continue;
                        }
                        let send = r.slot + late - offsets[p];
                        sends.push(send);
                        arrivals.push(send + rng.random_range(0..=100));
                        break;
                    }
                    conflicts += 1;
                    lost = true;
                }
            }
            let worst = max_in_window(&mut arrivals, 2000);
            assert!(worst <= 20, "seed {seed}: {worst} arrivals in one 2 s interval");
            assert!(max_in_window(&mut sends, 2000) <= 20);
            assert!(conflicts < 600 * 8, "seed {seed}: {conflicts} conflicts");
            total_discarded += discarded;
        }
        assert!(total_discarded > 1000, "the late-send path was exercised: {total_discarded}");
    }

    /// Under saturation the lanes deliver 20 requests per 2.2 s, and spreading after lost races
    /// costs little.
    #[test]
    fn a_share_keeps_to_its_lanes_and_leaves_the_rest_free() {
        let mut s = LaneState::default();
        for i in 0..40 {
            let r = s.plan_within(0, i * 7919, i % 3 == 0, 15);
            assert!(r.lane < 15, "{r:?}");
            assert!(s.try_reserve(r));
        }
        // Forty within fifteen lanes: the last round starts two lane periods in.
        assert_eq!(s.earliest_slot_within(0, 0, 15), 2 * LANE_PERIOD_MS);
        // The five other lanes are free at once for whoever may use them all.
        let people = s.plan(0, 0, false);
        assert_eq!(people.slot, 0);
        assert!(people.lane >= 15);
    }

    #[test]
    fn sustained_throughput_is_twenty_per_lane_period() {
        for spread in [false, true] {
            let mut s = LaneState::default();
            let mut last = 0;
            for i in 0..200 {
                let r = s.plan(0, i * 7919, spread);
                assert!(s.try_reserve(r));
                last = last.max(r.slot);
            }
            // 200 requests: 10 rounds of 20, the last round starting after 9 lane periods.
            let bound = if spread { 10 } else { 9 } * LANE_PERIOD_MS;
            assert!(last <= bound, "spread {spread}: {last}");
        }
    }
}
