//! App spec documents (`racer deploy -f app.yaml`, `racer policy -f`, the API's spec routes):
//! `racer_build::spec::parse` and `parse_policy` on arbitrary text, then everything derived from
//! an accepted spec. An accepted spec must survive a JSON round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = racer_build::spec::parse_policy(text);
    let Ok(doc) = racer_build::spec::parse(text) else {
        return;
    };
    let _ = doc.source();
    let _ = doc.notes();
    let _ = doc.run_config();
    let _ = doc.instances();
    let _ = doc.autoscale();
    let _ = doc.identity();
    let json = serde_json::to_string(&doc).expect("an accepted spec serializes");
    let again = racer_build::spec::parse(&json)
        .unwrap_or_else(|e| panic!("an accepted spec, as JSON, is refused: {e}\n{json}"));
    assert_eq!(again, doc, "the JSON round trip changed the spec");
});
