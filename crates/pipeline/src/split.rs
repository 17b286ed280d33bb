//! The receive budget split between the remotes whose video we watch.
//!
//! A receiver's downlink carries every remote's stream at once. Each sender's congestion
//! controller sees only its own path to us, so without a word from us every remote would
//! grow towards the whole downlink. The session therefore splits its receive budget
//! ([`VideoSessionConfig::receive_budget_bps`](crate::VideoSessionConfig::receive_budget_bps))
//! between the remotes it receives video from and tells each its share in a REMB, which
//! caps that sender's target towards us (`tincan_abr`'s controller honours it).
//!
//! The remote in the main view (the one the application pinned, else the active speaker)
//! weighs [`MAIN_VIEW_WEIGHT`] shares and every other subscribed remote one, as call apps
//! show one large picture and thumbnails. No share is below [`MIN_SHARE_BPS`], the
//! lowest rung's video with audio beside it, so a large call may ask for more than the
//! budget in total rather than starve anyone. A remote whose video is not watched
//! (unsubscribed) takes no share and is told the whole budget: we ask nothing of its rate.
//!
//! ```
//! use tincan_pipeline::split::{split_receive_budget, ShareRequest};
//! let remotes = [
//!     ShareRequest { watched: true, main_view: true },
//!     ShareRequest { watched: true, main_view: false },
//!     ShareRequest { watched: false, main_view: false },
//! ];
//! let mut shares = [0; 3];
//! split_receive_budget(2_000_000, &remotes, &mut shares);
//! assert_eq!(shares, [1_500_000, 500_000, 2_000_000]);
//! ```

/// Shares the main view weighs against one for every other watched remote.
pub const MAIN_VIEW_WEIGHT: u64 = 3;
/// Least share asked for (bits per second): the lowest video rung (320×180 at 15 fps,
/// 150 kbit/s) and audio with its redundancy beside it.
pub const MIN_SHARE_BPS: u64 = 200_000;

/// What the split needs to know of one remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRequest {
    /// Its video is received (subscribed, and the call has video).
    pub watched: bool,
    /// It is in the main view (pinned, else the active speaker).
    pub main_view: bool,
}

/// Writes into `shares[i]` the rate (bits per second) to ask of remote `i`: the budget
/// split by weight between the watched remotes, at least [`MIN_SHARE_BPS`] each; the whole
/// budget for a remote not watched. Only the first `remotes.len().min(shares.len())`
/// entries are written.
pub fn split_receive_budget(budget_bps: u64, remotes: &[ShareRequest], shares: &mut [u64]) {
    let weight = |r: &ShareRequest| {
        if !r.watched {
            0
        } else if r.main_view {
            MAIN_VIEW_WEIGHT
        } else {
            1
        }
    };
    let total: u64 = remotes.iter().map(weight).sum();
    for (remote, share) in remotes.iter().zip(shares.iter_mut()) {
        *share = match weight(remote) {
            0 => budget_bps,
            w => (budget_bps.saturating_mul(w) / total).max(MIN_SHARE_BPS),
        };
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const WATCHED: ShareRequest = ShareRequest {
        watched: true,
        main_view: false,
    };
    const MAIN: ShareRequest = ShareRequest {
        watched: true,
        main_view: true,
    };
    const UNWATCHED: ShareRequest = ShareRequest {
        watched: false,
        main_view: false,
    };

    #[test]
    fn one_remote_gets_the_whole_budget_main_view_or_not() {
        let mut shares = [0];
        split_receive_budget(4_000_000, &[WATCHED], &mut shares);
        assert_eq!(shares, [4_000_000]);
        split_receive_budget(4_000_000, &[MAIN], &mut shares);
        assert_eq!(shares, [4_000_000]);
    }

    #[test]
    fn the_main_view_weighs_three_thumbnails() {
        let mut shares = [0; 4];
        split_receive_budget(3_000_000, &[WATCHED, MAIN, WATCHED, WATCHED], &mut shares);
        assert_eq!(shares, [500_000, 1_500_000, 500_000, 500_000]);
    }

    #[test]
    fn a_large_call_asks_at_least_the_floor_of_everyone() {
        let mut remotes = [WATCHED; 15];
        remotes[0] = MAIN;
        let mut shares = [0; 15];
        split_receive_budget(2_000_000, &remotes, &mut shares);
        // 2 Mbit/s over 17 shares: the main view 353 kbit/s, thumbnails at the floor.
        assert_eq!(shares[0], 352_941);
        assert!(shares[1..].iter().all(|&s| s == MIN_SHARE_BPS));
    }

    #[test]
    fn unwatched_remotes_take_no_share_and_are_not_limited() {
        let mut shares = [0; 3];
        split_receive_budget(1_000_000, &[UNWATCHED, WATCHED, UNWATCHED], &mut shares);
        assert_eq!(shares, [1_000_000, 1_000_000, 1_000_000]);
    }

    proptest! {
        #[test]
        fn shares_follow_the_weights_and_the_floor(
            budget in 0u64..20_000_000,
            remotes in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..16),
        ) {
            let remotes: Vec<ShareRequest> = remotes
                .into_iter()
                .map(|(watched, main_view)| ShareRequest { watched, main_view })
                .collect();
            let mut shares = vec![0; remotes.len()];
            split_receive_budget(budget, &remotes, &mut shares);
            let watched: Vec<(ShareRequest, u64)> = remotes
                .iter()
                .zip(&shares)
                .filter(|(r, _)| r.watched)
                .map(|(r, s)| (*r, *s))
                .collect();
            for (remote, share) in remotes.iter().zip(&shares) {
                if !remote.watched {
                    prop_assert_eq!(*share, budget);
                } else {
                    prop_assert!(*share >= MIN_SHARE_BPS);
                }
            }
            // Above the floor, the shares spend at most the budget and a main view gets
            // its weight's worth (rounding down costs under one bit per second each).
            let above_floor: Vec<&(ShareRequest, u64)> =
                watched.iter().filter(|(_, s)| *s > MIN_SHARE_BPS).collect();
            let spent: u64 = above_floor.iter().map(|(_, s)| s).sum();
            prop_assert!(spent <= budget);
            for (a, sa) in &above_floor {
                for (b, sb) in &above_floor {
                    if a.main_view && !b.main_view {
                        prop_assert!(sa.abs_diff(sb * MAIN_VIEW_WEIGHT) < MAIN_VIEW_WEIGHT + 1);
                    }
                    if a.main_view == b.main_view {
                        prop_assert_eq!(sa, sb);
                    }
                }
            }
        }
    }
}
