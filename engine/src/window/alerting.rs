//! Alerting: the breach rule, the drift state machine (debounce, recovery,
//! cooldown) and dataset drift. Pure functions of the evaluations, so a
//! checkpoint restores them exactly.

use serde::{Deserialize, Serialize};

use crate::config::AlertingConfig;

/// The drift state of one (model, column, metric) key, or of a model's dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DriftState {
    pub(crate) drifting: bool,
    breaches: u32,
    cleans: u32,
    candidate_start: i64,
    /// Event time (ms) of the window where the candidate episode started.
    candidate_start_ms: Option<i64>,
    pub(crate) episode_start: i64,
    /// Whether this episode's drift event was emitted (not suppressed by cooldown).
    announced: bool,
    last_announced_ms: Option<i64>,
}

/// What one step of the state machine emits.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Drift,
    Resolved,
    Suppressed,
}

/// Whether a statistic `value` with p-value `p` breaches: at or above
/// `threshold` and below `p_threshold`, whichever are set (both: both must
/// hold; a p-value threshold without a p-value never breaches).
pub(crate) fn test_breach(value: Option<f64>, p: Option<f64>, threshold: Option<f64>, p_threshold: Option<f64>) -> bool {
    value.is_some_and(|v| {
        let by_stat = threshold.map(|t| v >= t);
        let by_p = p_threshold.zip(p).map(|(t, p)| p < t);
        match (by_stat, by_p) {
            (Some(a), Some(b)) => a && b,
            (Some(a), None) => a && p_threshold.is_none(),
            (None, Some(b)) => b,
            (None, None) => false,
        }
    })
}

/// [`step_with`] under a model's alerting rules.
pub(crate) fn step(state: &mut DriftState, breach: bool, defined: bool, at: i64, now_ms: Option<i64>, a: &AlertingConfig) -> Transition {
    step_with(state, breach, defined, at, now_ms, a.consecutive, a.recover_after, a.cooldown.0.as_millis() as i64)
}

/// The debounce / recovery / cooldown state machine.
///
/// OK → DRIFTING after `consecutive` breaching evaluations (the episode starts
/// at the first of them); DRIFTING → OK after `recover_after` clean ones. A
/// drift event is announced unless a previous drift event of the same key was
/// announced less than `cooldown_ms` of event time before the episode's start
/// (the event time of its first breaching window): then the episode is
/// tracked (state `drifting`) but neither its drift nor its resolution is sent.
/// An evaluation without a value (insufficient data) changes nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_with(
    state: &mut DriftState,
    breach: bool,
    defined: bool,
    at: i64,
    now_ms: Option<i64>,
    consecutive: u32,
    recover_after: u32,
    cooldown_ms: i64,
) -> Transition {
    if !defined {
        return Transition::None;
    }
    if !state.drifting {
        if !breach {
            state.breaches = 0;
            return Transition::None;
        }
        if state.breaches == 0 {
            state.candidate_start = at;
            state.candidate_start_ms = now_ms;
        }
        state.breaches += 1;
        if state.breaches < consecutive {
            return Transition::None;
        }
        state.drifting = true;
        state.breaches = 0;
        state.cleans = 0;
        state.episode_start = state.candidate_start;
        // The cooldown is measured from the last announced drift event to
        // this episode's start (its first breaching window), not to its
        // detection `consecutive` windows later.
        let cooling = match (state.last_announced_ms, state.candidate_start_ms) {
            (Some(last), Some(start)) => cooldown_ms > 0 && start.saturating_sub(last) < cooldown_ms,
            _ => false,
        };
        state.announced = !cooling;
        if cooling {
            return Transition::Suppressed;
        }
        state.last_announced_ms = now_ms;
        Transition::Drift
    } else {
        if breach {
            state.cleans = 0;
            return Transition::None;
        }
        state.cleans += 1;
        if state.cleans < recover_after {
            return Transition::None;
        }
        state.drifting = false;
        state.cleans = 0;
        if state.announced {
            Transition::Resolved
        } else {
            Transition::None
        }
    }
}

/// Dataset drift: the share of monitored columns (the prediction is not
/// one) with any metric drifting, and whether it reaches `share`.
pub(crate) fn dataset_share(monitored: &[bool], drifting: &[bool], share: f64) -> (f64, bool) {
    let total = monitored.iter().filter(|&&m| m).count().max(1);
    let n = monitored.iter().zip(drifting).filter(|&(&m, &d)| m && d).count();
    let value = n as f64 / total as f64;
    (value, value >= share)
}

/// One step of a model's dataset state: the column states are already
/// debounced, so it follows them directly (one breach to drift, one clean
/// window to resolve), under the model's cooldown.
pub(crate) fn step_dataset(state: &mut DriftState, breach: bool, at: i64, now_ms: Option<i64>, a: &AlertingConfig) -> Transition {
    step_with(state, breach, true, at, now_ms, 1, 1, a.cooldown.0.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_recovery_and_cooldown() {
        let mut s = DriftState::default();
        let run = |s: &mut DriftState, breach: bool, t: i64| step_with(s, breach, true, t, Some(t), 3, 2, 100);
        assert_eq!(run(&mut s, true, 1), Transition::None);
        assert_eq!(run(&mut s, true, 2), Transition::None);
        assert_eq!(run(&mut s, false, 3), Transition::None); // streak broken
        assert_eq!(run(&mut s, true, 4), Transition::None);
        assert_eq!(run(&mut s, true, 5), Transition::None);
        assert_eq!(run(&mut s, true, 6), Transition::Drift);
        assert_eq!(s.episode_start, 4);
        assert_eq!(run(&mut s, true, 7), Transition::None); // one event per episode
        assert_eq!(run(&mut s, false, 8), Transition::None);
        assert_eq!(run(&mut s, false, 9), Transition::Resolved);
        // A new episode within the cooldown (100 ms after t=6) is suppressed, with no resolved event either.
        for t in 10..12 {
            assert_eq!(run(&mut s, true, t), Transition::None);
        }
        assert_eq!(run(&mut s, true, 12), Transition::Suppressed);
        assert_eq!(run(&mut s, false, 13), Transition::None);
        assert_eq!(run(&mut s, false, 14), Transition::None);
        assert!(!s.drifting);
        // After the cooldown a new episode is announced.
        for t in 200..202 {
            run(&mut s, true, t);
        }
        assert_eq!(run(&mut s, true, 202), Transition::Drift);
    }

    #[test]
    fn cooldown_is_measured_to_the_episode_start_not_its_detection() {
        // Cooldown 100 ms, 3 breaches to detect; the first episode is announced at t = 6.
        let run = |s: &mut DriftState, breach: bool, t: i64| step_with(s, breach, true, t, Some(t), 3, 1, 100);
        let announced_at_6 = || {
            let mut s = DriftState::default();
            for t in 4..6 {
                run(&mut s, true, t);
            }
            assert_eq!(run(&mut s, true, 6), Transition::Drift);
            assert_eq!(run(&mut s, false, 7), Transition::Resolved);
            s
        };
        // Starting 99 ms after it and detected 101 ms after it: inside the cooldown.
        let mut s = announced_at_6();
        assert_eq!(run(&mut s, true, 105), Transition::None);
        assert_eq!(run(&mut s, true, 106), Transition::None);
        assert_eq!(run(&mut s, true, 107), Transition::Suppressed);
        // Starting exactly 100 ms after it: announced.
        let mut s = announced_at_6();
        assert_eq!(run(&mut s, true, 106), Transition::None);
        assert_eq!(run(&mut s, true, 107), Transition::None);
        assert_eq!(run(&mut s, true, 108), Transition::Drift);
    }

    #[test]
    fn insufficient_data_changes_nothing() {
        let mut s = DriftState::default();
        assert_eq!(step_with(&mut s, true, true, 1, None, 2, 1, 0), Transition::None);
        assert_eq!(step_with(&mut s, false, false, 2, None, 2, 1, 0), Transition::None);
        assert_eq!(step_with(&mut s, true, true, 3, None, 2, 1, 0), Transition::Drift);
    }

    #[test]
    fn the_breach_rule() {
        // Statistic threshold alone: at or above.
        assert!(test_breach(Some(0.2), None, Some(0.2), None));
        assert!(!test_breach(Some(0.19), None, Some(0.2), None));
        // p-value threshold alone: strictly below.
        assert!(test_breach(Some(0.0), Some(0.009), None, Some(0.01)));
        assert!(!test_breach(Some(0.0), Some(0.01), None, Some(0.01)));
        // Both: both must hold.
        assert!(test_breach(Some(0.3), Some(0.001), Some(0.2), Some(0.01)));
        assert!(!test_breach(Some(0.3), Some(0.5), Some(0.2), Some(0.01)));
        assert!(!test_breach(Some(0.1), Some(0.001), Some(0.2), Some(0.01)));
        // A p-value threshold without a p-value never breaches.
        assert!(!test_breach(Some(0.3), None, Some(0.2), Some(0.01)));
        // No value, or no threshold at all: no breach.
        assert!(!test_breach(None, Some(0.0), Some(0.0), Some(1.0)));
        assert!(!test_breach(Some(1.0), Some(0.0), None, None));
    }

    #[test]
    fn dataset_drift_counts_monitored_columns_only() {
        // Three features and the prediction (not monitored); two features drift, and so does the prediction.
        let monitored = [true, true, true, false];
        let drifting = [true, false, true, true];
        let (share, breach) = dataset_share(&monitored, &drifting, 0.5);
        assert_eq!(share, 2.0 / 3.0);
        assert!(breach);
        assert!(!dataset_share(&monitored, &drifting, 0.7).1);
        // Only a prediction: the share is over one column, never a division by zero.
        assert_eq!(dataset_share(&[false], &[true], 0.5), (0.0, false));
    }

    #[test]
    fn the_dataset_state_follows_at_once_under_the_cooldown() {
        let a = AlertingConfig {
            consecutive: 5,
            recover_after: 5,
            cooldown: crate::config::HumanDuration(std::time::Duration::from_millis(100)),
            dataset_drift_share: Some(0.5),
        };
        let mut s = DriftState::default();
        assert_eq!(step_dataset(&mut s, true, 1, Some(1), &a), Transition::Drift);
        assert_eq!(step_dataset(&mut s, false, 2, Some(2), &a), Transition::Resolved);
        assert_eq!(step_dataset(&mut s, true, 3, Some(50), &a), Transition::Suppressed);
        assert_eq!(step_dataset(&mut s, false, 4, Some(60), &a), Transition::None);
        assert_eq!(step_dataset(&mut s, true, 5, Some(200), &a), Transition::Drift);
    }

    #[test]
    fn the_state_survives_serialization() {
        let mut s = DriftState::default();
        for t in 0..3 {
            step_with(&mut s, true, true, t, Some(t * 10), 2, 2, 0);
        }
        let back: DriftState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<DriftState>(r#"{"drifting":true,"extra":1}"#).is_err());
    }
}
