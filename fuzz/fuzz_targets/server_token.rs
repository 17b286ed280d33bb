//! Login tokens and server frames from arbitrary bytes: token checking never panics and
//! agrees with the unverified parse and with minting; a logged-in connection of the
//! server's sans-IO hub takes any frame with an answer and without panicking.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tincan_server::hub::{Hub, HubConfig, HubOutput, Now};
use tincan_server::token::{TokenKey, parse_unverified};
use tincan_signal::protocol::{DeviceId, Envelope, Message, MessageId, UserId};

const SECRET: &[u8] = b"fuzzing secret, at least 16 bytes";

fuzz_target!(|data: &[u8]| {
    let key = TokenKey::new(SECRET.to_vec()).expect("long secret");
    if let Ok(text) = std::str::from_utf8(data) {
        let verified = key.verify(text, 1_000);
        let parsed = parse_unverified(text);
        if let Ok(claims) = &verified {
            assert_eq!(parsed.as_ref().ok(), Some(claims));
            assert!(claims.expiry > 1_000);
            // A valid token is exactly what minting gives.
            assert_eq!(key.mint(&claims.user, claims.expiry), text);
        }
        if let Ok(claims) = parsed {
            let minted = key.mint(&claims.user, claims.expiry);
            assert_eq!(parse_unverified(&minted).ok(), Some(claims));
        }
    }

    let start = Instant::now();
    let now = Now {
        instant: start,
        unix_ms: 1_000_000,
    };
    let mut hub = Hub::new(HubConfig::default(), key.clone());
    let conn = hub.open(now).expect("room for one connection");
    let user = UserId::new("fuzz").expect("valid id");
    let login = Envelope::new(
        MessageId::new("login").expect("valid id"),
        0,
        Message::Login {
            user: user.clone(),
            device: DeviceId::new("d").expect("valid id"),
            token: key.mint(&user, 10_000),
        },
    );
    hub.handle_frame(conn, login.to_json().as_bytes(), now);
    while hub.poll_output().is_some() {}
    hub.handle_frame(conn, data, now);
    let mut answers = 0;
    while let Some(output) = hub.poll_output() {
        if let HubOutput::Send { text, .. } = output {
            assert!(
                tincan_signal::parse(text.as_bytes()).is_ok(),
                "the hub sends valid envelopes"
            );
            answers += 1;
        }
    }
    let _ = answers;
    hub.close(conn, now);
    hub.handle_timeout(Now {
        instant: start + Duration::from_secs(3_600),
        unix_ms: 4_600_000,
    });
    while hub.poll_output().is_some() {}
    assert_eq!(hub.connections(), 0);
});
