//! Unit checks of the bench harness's helpers (no timings are asserted).
//!
//! They live here rather than in `src/` because the library compiles
//! text-clean's source in (src/lib.rs), whose own `#[cfg(test)]` module
//! cannot build inside another crate; the library's unit-test target is
//! therefore off (`[lib] test = false`).

mod corpus {
    use weir_benches::corpus::*;

    #[test]
    fn records_are_json_objects_of_about_400_bytes() {
        let n = 2000;
        let mut total = 0;
        for (key, value) in tweets(n) {
            let v: serde_json::Value = serde_json::from_str(&value).unwrap();
            assert_eq!(v["id"].as_str(), Some(key.as_str()));
            total += value.len();
        }
        let avg = total / n as usize;
        assert!((330..=470).contains(&avg), "average record size {avg}");
    }

    #[test]
    fn deterministic() {
        assert_eq!(tweet(42), tweet(42));
        assert_ne!(tweet(42).1, tweet(43).1);
    }
}

mod native {
    use serde_json::Value;
    use weir_benches::native::*;

    #[test]
    fn cleans_and_enriches() {
        let value =
            br#"{"id":"1","text":"RT @Ann: Go #Hawks! see https://www.news.example/x &amp; more"}"#;
        let out = Native::new(Transform::CleanEnrich)
            .apply(value, "t", 2, 7)
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["text"], "Go #Hawks! see & more");
        assert_eq!(v["hashtags"], serde_json::json!(["hawks"]));
        assert_eq!(v["mentions"], serde_json::json!(["ann"]));
        assert_eq!(v["url_domains"], serde_json::json!(["news.example"]));
        assert_eq!(v["word_count"], 5);
        assert_eq!(v["weir"]["source"]["offset"], 7);
    }

    #[test]
    fn clean_validate_keeps_the_cleaned_object() {
        let value = br#"{"text":"hi @bob"}"#;
        let out = Native::new(Transform::CleanValidate)
            .apply(value, "t", 0, 0)
            .unwrap();
        assert_eq!(out, br#"{"text":"hi","text_original":"hi @bob"}"#);
    }
}

mod procstat {
    use weir_benches::procstat::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat = "1234 (we ir) (x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 200 300";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 300);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_ok());
        assert!(peak_rss_bytes(pid).unwrap() > 0);
    }
}

mod prom {
    use weir_benches::prom::*;

    const TEXT: &str = r#"# TYPE weir_batch_duration_seconds histogram
weir_batch_duration_seconds_sum{pipeline="a"} 1.5
weir_batch_duration_seconds_count{pipeline="a"} 10
weir_batch_duration_seconds_bucket{le="0.001",pipeline="a"} 2
weir_batch_duration_seconds_bucket{le="0.002",pipeline="a"} 6
weir_batch_duration_seconds_bucket{le="0.004",pipeline="a"} 10
weir_batch_duration_seconds_bucket{le="+Inf",pipeline="a"} 10
weir_batch_duration_seconds_bucket{pipeline="b",le="0.001"} 0
weir_other_bucket{le="0.001"} 99
"#;

    #[test]
    fn parses_and_interpolates() {
        let h = Histogram::parse(TEXT, "weir_batch_duration_seconds");
        assert_eq!(h.buckets.len(), 4);
        assert_eq!(h.count, 10.0);
        // rank 5 lies 3/4 of the way through (0.001, 0.002].
        assert!((h.quantile(0.5).unwrap() - 0.00175).abs() < 1e-12);
        assert!((h.quantile(0.99).unwrap() - 0.00395).abs() < 1e-12);
        assert_eq!(h.mean(), Some(0.15));
    }

    #[test]
    fn difference_of_two_scrapes() {
        let h = Histogram::parse(TEXT, "weir_batch_duration_seconds");
        let d = h.since(&h);
        assert_eq!(d.count, 0.0);
        assert_eq!(d.quantile(0.5), None);
    }
}
