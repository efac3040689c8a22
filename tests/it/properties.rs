//! Property tests: the encoder, canonicalization and the classifier.

use aliyun_guard::__internal::{
    canonical_query, check_state_file, decode, detect_body, is_leak_answer, percent_decode,
    percent_encode, sign_params,
};
use aliyun_guard::guard::RestrictionTable;
use aliyun_guard::signing::Method;
use proptest::prelude::*;

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~".contains(&b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_gives_back_the_input(s in any::<String>()) {
        prop_assert_eq!(percent_decode(&percent_encode(&s)), Some(s));
    }

    #[test]
    fn only_unreserved_bytes_stay_unescaped(s in any::<String>()) {
        let encoded = percent_encode(&s);
        let bytes = encoded.as_bytes();
        let mut i = 0;
        let mut decoded_len = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                prop_assert!(i + 2 < bytes.len(), "truncated escape");
                let hex = &encoded[i + 1..i + 3];
                prop_assert!(hex.bytes().all(|h| h.is_ascii_digit() || (b'A'..=b'F').contains(&h)), "lower-case or bad hex {}", hex);
                let byte = u8::from_str_radix(hex, 16).unwrap();
                prop_assert!(!unreserved(byte), "unreserved byte {byte:#x} was escaped");
                i += 3;
            } else {
                prop_assert!(unreserved(bytes[i]), "byte {:#x} left unescaped", bytes[i]);
                i += 1;
            }
            decoded_len += 1;
        }
        prop_assert_eq!(decoded_len, s.len());
    }

    #[test]
    fn canonical_order_does_not_depend_on_insertion_order(
        params in proptest::collection::btree_map(".{0,12}", ".{0,24}", 0..16),
        seed in any::<u64>(),
    ) {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut shuffled = pairs.clone();
        // Deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(canonical_query(&pairs), canonical_query(&shuffled));
        prop_assert_eq!(
            sign_params(Method::Post, &pairs, "secret").signature,
            sign_params(Method::Post, &shuffled, "secret").signature
        );
    }

    #[test]
    fn the_canonical_query_is_sorted_by_raw_name(
        params in proptest::collection::btree_map(".{1,8}", ".{0,8}", 1..10),
    ) {
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let q = canonical_query(&pairs);
        let names: Vec<String> = q
            .split('&')
            .map(|kv| percent_decode(kv.split('=').next().unwrap()).unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        prop_assert_eq!(names, sorted);
    }

    #[test]
    fn the_classifier_never_panics(code in proptest::option::of(".*"), message in proptest::option::of(".*")) {
        let _ = is_leak_answer(code.as_deref(), message.as_deref());
    }

    #[test]
    fn body_decoding_and_detection_never_panic(status in 0u16..1000, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(status, &body);
        let _ = detect_body(&body);
    }

    #[test]
    fn leak_sentences_with_any_spacing_and_case_are_detected(
        spaces in proptest::collection::vec("[ \t\n]{1,3}", 9),
        upper in proptest::collection::vec(any::<bool>(), 9),
    ) {
        let words = ["There", "is", "a", "risk", "of", "leakage", "of", "this", "AccessKey."];
        let mut message = String::new();
        for (i, word) in words.iter().enumerate() {
            message.push_str(&spaces[i]);
            message.push_str(&if upper[i] { word.to_uppercase() } else { word.to_lowercase() });
        }
        prop_assert!(is_leak_answer(Some(" Forbidden "), Some(&message)));
        prop_assert!(is_leak_answer(None, Some(&message)));
        prop_assert!(!is_leak_answer(Some("Forbidden.RAM"), Some(&message)));
    }

    #[test]
    fn table_and_state_loaders_never_panic(text in ".{0,400}") {
        let _ = RestrictionTable::from_toml_str(&text, "prop");
        let _ = RestrictionTable::from_json_str(&text, "prop");
        let _ = check_state_file(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The fast encoder equals the `percent-encoding` crate with the POP character set.
    #[test]
    fn the_encoder_matches_the_percent_encoding_crate(s in any::<String>()) {
        use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
        const POP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
        prop_assert_eq!(percent_encode(&s), utf8_percent_encode(&s, POP).to_string());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The signer (common parameters merged in, byte-buffer encoding) signs exactly what
    /// `sign_params` signs for the same full parameter set.
    #[test]
    fn the_signer_agrees_with_sign_params(
        params in proptest::collection::btree_map("[A-Za-z0-9._~ *+/=&%中😀-]{1,10}", ".{0,20}", 0..12),
        token in proptest::option::of("[A-Za-z0-9+/=]{1,40}"),
        region in proptest::option::of("[a-z0-9-]{1,15}"),
        get in any::<bool>(),
    ) {
        use aliyun_guard::__internal::is_reserved;
        use aliyun_guard::signing::Signer;
        use aliyun_guard::{Credentials, RpcRequest};
        let method = if get { Method::Get } else { Method::Post };
        let mut creds = Credentials::new("LTAI5tPropKeyId000000abc", "prop-secret");
        if let Some(t) = &token {
            creds = creds.with_security_token(t.clone());
        }
        let mut request = RpcRequest::new("Ecs", "2014-05-26", "DescribeRegions")
            .method(method)
            .params(params.iter().filter(|(k, _)| !is_reserved(k)).map(|(k, v)| (k.clone(), v.clone())));
        if let Some(r) = &region {
            request = request.region(r.clone());
        }
        let signer = Signer::new()
            .with_clock(|| time::macros::datetime!(2026-11-23 10:00:00 UTC))
            .with_nonce(|| "fixed-nonce".into());
        let signed = signer.sign(&request, &creds);
        let mut all: Vec<(&str, &str)> = vec![
            ("AccessKeyId", "LTAI5tPropKeyId000000abc"),
            ("Action", "DescribeRegions"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "fixed-nonce"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2026-11-23T10:00:00Z"),
            ("Version", "2014-05-26"),
        ];
        if let Some(t) = &token {
            all.push(("SecurityToken", t));
        }
        if let Some(r) = &region
            && !request.parameters().contains_key("RegionId")
        {
            all.push(("RegionId", r));
        }
        all.extend(request.parameters().iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let expected = sign_params(method, &all, "prop-secret");
        prop_assert_eq!(signed.string_to_sign(), expected.string_to_sign.as_str());
        prop_assert_eq!(
            signed.encoded_params(),
            format!("{}&Signature={}", expected.canonical_query, percent_encode(&expected.signature))
        );
    }
}
