//! Every JSON example in `docs/PROTOCOL.md` parses, and serializes back to the same
//! envelope; every message type of the protocol has an example there.

use std::collections::BTreeSet;

use tincan_signal::protocol::{MESSAGE_TYPES, parse};

fn examples() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/PROTOCOL.md");
    let text = std::fs::read_to_string(path).expect("docs/PROTOCOL.md is readable");
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(_), "```") => examples.extend(current.take()),
            (Some(block), line) => block.push_str(line),
            (None, _) => {}
        }
    }
    examples
}

#[test]
fn every_example_parses_and_round_trips() {
    let examples = examples();
    assert!(examples.len() >= 25, "only {} examples", examples.len());
    let mut types = BTreeSet::new();
    for example in &examples {
        let envelope = parse(example.as_bytes())
            .unwrap_or_else(|e| panic!("example does not parse ({e}): {example}"));
        assert_eq!(parse(envelope.to_json().as_bytes()).unwrap(), envelope);
        types.insert(envelope.message.type_name());
    }
    let all: BTreeSet<&str> = MESSAGE_TYPES.iter().copied().collect();
    let missing: Vec<_> = all.difference(&types).collect();
    assert!(missing.is_empty(), "no example for {missing:?}");
}
