//! The request-target canonicaliser that route rules and endpoint lookup match on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_audit::request_target::CanonicalPath;

fuzz_target!(|path: &str| {
    let canonical = CanonicalPath::new(path);
    for reading in [canonical.strict(), canonical.decoded()] {
        assert!(reading.starts_with('/'), "{reading:?} is absolute");
        for segment in reading.split('/').skip(1) {
            assert!(
                segment != "." && segment != "..",
                "{reading:?} has a dot segment"
            );
        }
        assert!(!reading.contains("//"), "{reading:?} has an empty segment");
        // A canonical reading reads the same when canonicalised again.
        let again = CanonicalPath::new(reading);
        assert_eq!(
            again.strict(),
            reading,
            "strict reading of {path:?} is a fixed point"
        );
    }
    // Unresolved readings (dot segments left in place) have a dot segment each. (Read
    // again they need not give the same readings back: the decoded reading writes a `%` it
    // decoded as `%25`, which a second reading decodes again.)
    for reading in canonical.unresolved() {
        assert!(reading.starts_with('/'), "{reading:?} is absolute");
        assert!(
            reading.split('/').any(|s| s == "." || s == ".."),
            "{reading:?} has a dot segment"
        );
    }
    assert_eq!(
        canonical.has_dot_segments(),
        canonical.unresolved().next().is_some(),
        "dot segments exactly when there is an unresolved reading: {path:?}"
    );
    assert_eq!(
        canonical.ambiguity().is_none(),
        canonical.readings().count() == 1,
        "ambiguous exactly when the readings differ: {path:?}"
    );
});
