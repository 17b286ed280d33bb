//! Fuzzes RTP parsing: parse, walk every extension element, read the typed extensions,
//! then rebuild from what parsed and check the rebuilt packet parses to the same fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_rtp::extension::{
    Extension, ExtensionForm, ExtensionKind, ExtensionMap, KnownExtensions,
};
use tincan_rtp::packet::HeaderExtension;
use tincan_rtp::{RtpPacket, RtpPacketBuilder};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = RtpPacket::parse(data) else {
        return;
    };
    assert_eq!(
        packet.header_len() + packet.payload().len() + packet.padding(),
        data.len()
    );
    let mut map = ExtensionMap::new();
    for (id, kind) in [1, 2, 3].into_iter().zip(ExtensionKind::ALL) {
        let _ = map.insert(id, kind);
    }
    let _ = KnownExtensions::read(&packet, &map);

    let elements: Result<Vec<Extension<'_>>, _> = packet.extensions().collect();
    let csrcs: Vec<u32> = packet.csrcs().collect();
    let extension = match (packet.extension_block(), &elements) {
        (None, _) => HeaderExtension::None,
        (Some((profile, body)), _) if ExtensionForm::from_profile(profile).is_none() => {
            HeaderExtension::Raw {
                profile,
                data: body,
            }
        }
        (Some((profile, _)), Ok(elements)) => match ExtensionForm::from_profile(profile) {
            Some(form) => HeaderExtension::ElementsIn(form, elements),
            None => return,
        },
        // A malformed element list cannot be rebuilt.
        (Some(_), Err(_)) => return,
    };
    let Ok(padding) = u8::try_from(packet.padding()) else {
        return;
    };
    let builder = RtpPacketBuilder::new(
        packet.payload_type(),
        packet.sequence_number().0,
        packet.timestamp().0,
        packet.ssrc(),
    )
    .marker(packet.marker())
    .csrcs(&csrcs)
    .header_extension(extension)
    .payload(packet.payload())
    .padding(padding);
    let mut out = Vec::new();
    // Elements parsed from a valid block always fit their own form again.
    builder.write_vec(&mut out).expect("rebuild what parsed");
    let again = RtpPacket::parse(&out).expect("parse what we built");
    assert_eq!(again.marker(), packet.marker());
    assert_eq!(again.payload_type(), packet.payload_type());
    assert_eq!(again.sequence_number(), packet.sequence_number());
    assert_eq!(again.timestamp(), packet.timestamp());
    assert_eq!(again.ssrc(), packet.ssrc());
    assert!(again.csrcs().eq(packet.csrcs()));
    assert_eq!(again.payload(), packet.payload());
    assert_eq!(again.padding(), packet.padding());
    let rebuilt: Vec<_> = again
        .extensions()
        .collect::<Result<_, _>>()
        .expect("elements");
    if let Ok(elements) = elements {
        assert_eq!(rebuilt, elements);
    }
});
