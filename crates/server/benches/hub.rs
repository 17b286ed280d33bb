//! Hot paths of the server core: one call message parsed, checked, routed and serialized
//! for a 4-party call; a login token verified.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tincan_server::{Hub, HubConfig, Now, TokenKey};
use tincan_signal::protocol::{
    CallId, DeviceId, Envelope, MediaType, Message, MessageId, RoomId, UserId,
};

const SECRET: &[u8] = b"benchmark secret, 32 bytes long!";

fn frame(id: u64, message: Message) -> String {
    Envelope::new(MessageId::new(format!("m{id}")).unwrap(), id, message).to_json()
}

fn bench_route(c: &mut Criterion) {
    let key = TokenKey::new(SECRET.to_vec()).unwrap();
    let config = HubConfig {
        rate_burst: u32::MAX,
        rate_per_second: u32::MAX,
        ..HubConfig::default()
    };
    let mut hub = Hub::new(config, key.clone());
    let start = Instant::now();
    let now = Now {
        instant: start,
        unix_ms: 1_700_000_000_000,
    };
    let users = ["alice", "bob", "carol", "dave"];
    let mut conns = Vec::new();
    for user in users {
        let conn = hub.open(now).unwrap();
        let user_id = UserId::new(user).unwrap();
        let login = Message::Login {
            user: user_id.clone(),
            device: DeviceId::new("d").unwrap(),
            token: key.mint(&user_id, 1_800_000_000),
        };
        hub.handle_frame(conn, frame(0, login).as_bytes(), now);
        conns.push(conn);
    }
    let call_id = CallId::new("call").unwrap();
    let invite = Message::Invite {
        call_id: call_id.clone(),
        room_id: RoomId::new("call").unwrap(),
        media: MediaType::Audio,
        callees: users[1..]
            .iter()
            .map(|u| UserId::new(*u).unwrap())
            .collect(),
        group_id: None,
        ring_timeout_ms: 30_000,
        user_data: None,
    };
    hub.handle_frame(conns[0], frame(1, invite).as_bytes(), now);
    while hub.poll_output().is_some() {}
    let mut seq = 2;
    c.bench_function("hub: media_state routed to 3 devices", |b| {
        b.iter(|| {
            seq += 1;
            let text = frame(
                seq,
                Message::MediaState {
                    call_id: call_id.clone(),
                    mic: seq % 2 == 0,
                    camera: false,
                },
            );
            let now = Now {
                instant: start + Duration::from_micros(seq),
                unix_ms: 1_700_000_000_000,
            };
            hub.handle_frame(conns[0], text.as_bytes(), now);
            let mut sent = 0;
            while let Some(output) = hub.poll_output() {
                black_box(&output);
                sent += 1;
            }
            assert_eq!(sent, 3);
        })
    });
    let token = key.mint(&UserId::new("bob").unwrap(), 1_800_000_000);
    c.bench_function("token: verify", |b| {
        b.iter(|| key.verify(black_box(&token), 1_700_000_000).unwrap())
    });
}

criterion_group!(benches, bench_route);
criterion_main!(benches);
