//! The committed header `include/tae_edu.h` against the code: the exports and their docs, the
//! status codes, the host table's layout, the constants, and the rule that no `bool` and no
//! struct by value crosses the ABI. (`scripts/check-header.sh` checks it is byte-for-byte what
//! cbindgen generates; this test checks what it says.)

use std::mem::{align_of, offset_of, size_of};
use tae_edu::error::Status;
use tae_edu::ffi::{TaeEduHost, ABI_VERSION, MAX_REQUEST_BYTES};

const HEADER: &str = include_str!("../../include/tae_edu.h");

const EXPORTS: [&str; 7] = [
    "tae_edu_abi_version",
    "tae_edu_configure",
    "tae_edu_execute",
    "tae_edu_attachment_list",
    "tae_edu_buffer_free",
    "tae_edu_session_end",
    "tae_edu_shutdown",
];

/// The C declarations (text between the previous `;`/`}` and the next `;`) of the header, with
/// comments removed.
fn declarations() -> Vec<String> {
    let code: String = HEADER
        .lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    let mut code = code;
    while let (Some(start), Some(end)) = (code.find("/*"), code.find("*/")) {
        if end < start {
            break;
        }
        code.replace_range(start..end + 2, " ");
    }
    code.split([';', '{', '}'])
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|d| !d.is_empty())
        .collect()
}

#[test]
fn every_export_is_declared_once_and_documented() {
    let declarations = declarations();
    for export in EXPORTS {
        let found: Vec<&String> = declarations
            .iter()
            .filter(|d| d.contains(&format!(" {export}(")))
            .collect();
        assert_eq!(found.len(), 1, "{export}: {found:?}");
        // The doc comment lines right above the declaration line.
        let lines: Vec<&str> = HEADER.lines().collect();
        let at = lines
            .iter()
            .position(|l| {
                let mut words = l.split_whitespace();
                let return_type = words.next().unwrap_or("");
                return_type
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && words
                        .next()
                        .is_some_and(|w| w.starts_with(&format!("{export}(")))
            })
            .unwrap_or_else(|| panic!("{export} not declared"));
        let doc: Vec<&str> = lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("//"))
            .copied()
            .collect();
        let doc = doc.into_iter().rev().collect::<Vec<_>>().join("\n");
        for section in ["Parameters", "Returns", "Memory and lifetimes"] {
            assert!(
                doc.contains(section),
                "{export}: no \"{section}\" in its doc:\n{doc}"
            );
        }
        // The out-pointer rule, as docs/abi.md and README.md state it.
        if declarations
            .iter()
            .any(|d| d.contains(&format!(" {export}(")) && d.contains("uint8_t **out"))
        {
            let flat = doc
                .lines()
                .map(|l| l.trim_start_matches("//").trim())
                .collect::<Vec<_>>()
                .join(" ");
            for rule in [
                "is set to NULL/0 first, on every path",
                "If either is NULL the call is refused with 1 NULL_ARGUMENT before anything runs",
                "when `out` or `out_len` is NULL)",
            ] {
                assert!(
                    flat.contains(rule),
                    "{export}: the doc lacks \"{rule}\":\n{doc}"
                );
            }
        }
    }
    let exported: Vec<&String> = declarations
        .iter()
        .filter(|d| d.contains("tae_edu_") && d.contains('('))
        .collect();
    assert_eq!(exported.len(), EXPORTS.len(), "{exported:#?}");
}

#[test]
fn no_bool_and_no_struct_by_value_crosses_the_abi() {
    let words = |d: &str| {
        d.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for declaration in declarations() {
        assert!(
            !words(&declaration)
                .iter()
                .any(|w| w == "bool" || w == "_Bool"),
            "bool in {declaration}"
        );
        // In every function and callback signature, a struct appears only behind a pointer.
        if declaration.contains('(') {
            let mut rest = declaration.as_str();
            while let Some(i) = rest.find("TaeEduHost") {
                let after = rest[i + "TaeEduHost".len()..].trim_start();
                assert!(
                    after.starts_with('*'),
                    "TaeEduHost by value in {declaration}"
                );
                rest = &rest[i + 1..];
            }
            assert!(
                !declaration.contains("struct") || declaration.contains("struct TaeEduHost *"),
                "a struct in {declaration}"
            );
        }
    }
    // The only types in the exports' signatures: fixed-width integers, size_t, void, pointers.
    for declaration in declarations()
        .iter()
        .filter(|d| d.contains("tae_edu_") && d.contains('('))
    {
        for word in words(declaration) {
            let allowed = word.is_empty()
                || word.starts_with("tae_edu_")
                || matches!(
                    word.as_str(),
                    "int32_t"
                        | "uint32_t"
                        | "uint8_t"
                        | "size_t"
                        | "void"
                        | "const"
                        | "struct"
                        | "TaeEduHost"
                        | "host"
                        | "request"
                        | "request_len"
                        | "out"
                        | "out_len"
                        | "buf"
                        | "len"
                        | "session_id"
                );
            assert!(allowed, "unexpected `{word}` in {declaration}");
        }
    }
}

/// Every status of the code, with the name of its header constant and its value. The `match`
/// has no wildcard: a status added to `Status` does not compile until it is listed here.
fn header_entry(status: Status) -> (&'static str, i32) {
    match status {
        Status::Ok => ("TAE_EDU_STATUS_OK", 0),
        Status::NullArgument => ("TAE_EDU_STATUS_NULL_ARGUMENT", 1),
        Status::InvalidUtf8 => ("TAE_EDU_STATUS_INVALID_UTF8", 2),
        Status::InvalidRequest => ("TAE_EDU_STATUS_INVALID_REQUEST", 3),
        Status::InvalidHostTable => ("TAE_EDU_STATUS_INVALID_HOST_TABLE", 4),
        Status::Reentrant => ("TAE_EDU_STATUS_REENTRANT", 5),
        Status::Panic => ("TAE_EDU_STATUS_PANIC", 6),
        Status::HostError => ("TAE_EDU_STATUS_HOST_ERROR", 7),
        Status::Cancelled => ("TAE_EDU_STATUS_CANCELLED", 8),
        Status::AuthFailed => ("TAE_EDU_STATUS_AUTH_FAILED", 9),
        Status::PermissionDenied => ("TAE_EDU_STATUS_PERMISSION_DENIED", 10),
        Status::TaeError => ("TAE_EDU_STATUS_TAE_ERROR", 11),
        Status::InvalidConfig => ("TAE_EDU_STATUS_INVALID_CONFIG", 12),
        Status::RequestTooLarge => ("TAE_EDU_STATUS_REQUEST_TOO_LARGE", 13),
        Status::Busy => ("TAE_EDU_STATUS_BUSY", 14),
        Status::Internal => ("TAE_EDU_STATUS_INTERNAL", 99),
    }
}

const ALL_STATUSES: [Status; 16] = [
    Status::Ok,
    Status::NullArgument,
    Status::InvalidUtf8,
    Status::InvalidRequest,
    Status::InvalidHostTable,
    Status::Reentrant,
    Status::Panic,
    Status::HostError,
    Status::Cancelled,
    Status::AuthFailed,
    Status::PermissionDenied,
    Status::TaeError,
    Status::InvalidConfig,
    Status::RequestTooLarge,
    Status::Busy,
    Status::Internal,
];

/// The `TAE_EDU_STATUS_* = N` entries of the header's `enum TaeEduStatus`, in order.
fn header_statuses() -> Vec<(String, i32)> {
    let start = HEADER
        .find("enum TaeEduStatus")
        .expect("the header declares enum TaeEduStatus");
    let body = &HEADER[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("TAE_EDU_STATUS_"))
        .map(|line| {
            let (name, value) = line
                .trim_end_matches(',')
                .split_once('=')
                .unwrap_or_else(|| panic!("an enum entry without a value: {line}"));
            (
                name.trim().to_string(),
                value.trim().parse().unwrap_or_else(|_| panic!("{line}")),
            )
        })
        .collect()
}

#[test]
fn status_codes_match_the_code() {
    // The code: every status keeps its number (never renumbered) and the ABI's code string.
    let mut numbers: Vec<i32> = ALL_STATUSES.iter().map(|s| *s as i32).collect();
    numbers.dedup();
    assert_eq!(
        numbers.len(),
        ALL_STATUSES.len(),
        "two statuses share a number"
    );
    for status in ALL_STATUSES {
        let (constant, value) = header_entry(status);
        assert_eq!(status as i32, value, "{status:?} was renumbered");
        assert_eq!(
            format!("TAE_EDU_STATUS_{}", status.code()).replace("REENTRANT_CALL", "REENTRANT"),
            constant,
            "{status:?}: the JSON code and the header constant disagree"
        );
    }
    // The header: exactly these constants, with these values, in this order — read from the
    // committed include/tae_edu.h, not restated.
    let expected: Vec<(String, i32)> = ALL_STATUSES
        .iter()
        .map(|s| {
            let (name, value) = header_entry(*s);
            (name.to_string(), value)
        })
        .collect();
    assert_eq!(header_statuses(), expected);
    assert!(HEADER.contains("typedef int32_t TaeEduStatus;"));
    // The doc comment of each constant is the code's doc of the variant (cbindgen copies it):
    // the line right above each entry is a comment.
    let lines: Vec<&str> = HEADER.lines().collect();
    for (name, _) in &expected {
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{name} =")))
            .unwrap();
        assert!(
            lines[at - 1].trim_start().starts_with("//"),
            "{name} has no doc comment in the header"
        );
    }
}

#[test]
fn constants_match_the_code() {
    assert!(HEADER.contains(&format!("#define TAE_EDU_ABI_VERSION {ABI_VERSION}\n")));
    assert!(HEADER.contains(&format!(
        "#define TAE_EDU_MAX_REQUEST_BYTES {MAX_REQUEST_BYTES}\n"
    )));
    assert!(HEADER.contains("#ifndef TAE_EDU_H") && HEADER.contains("#define TAE_EDU_H"));
}

#[test]
fn the_host_table_layout_is_the_documented_one() {
    let p = size_of::<usize>();
    assert_eq!(offset_of!(TaeEduHost, abi_version), 0);
    assert_eq!(offset_of!(TaeEduHost, struct_size), 4);
    assert_eq!(offset_of!(TaeEduHost, ctx), 8);
    assert_eq!(offset_of!(TaeEduHost, call), 8 + p);
    assert_eq!(offset_of!(TaeEduHost, free_buffer), 8 + 2 * p);
    assert_eq!(offset_of!(TaeEduHost, log), 8 + 3 * p);
    assert_eq!(offset_of!(TaeEduHost, progress), 8 + 4 * p);
    assert_eq!(size_of::<TaeEduHost>(), 8 + 5 * p);
    assert_eq!(align_of::<TaeEduHost>(), p.max(4));
    // Field order in the header.
    let body = &HEADER[HEADER.find("typedef struct TaeEduHost {").unwrap()..];
    let body = &body[..body.find("} TaeEduHost;").unwrap()];
    let positions: Vec<usize> = [
        "uint32_t abi_version;",
        "uint32_t struct_size;",
        "void *ctx;",
        "(*call)(",
        "(*free_buffer)(",
        "(*log)(",
        "(*progress)(",
    ]
    .iter()
    .map(|field| {
        body.find(field)
            .unwrap_or_else(|| panic!("{field} missing"))
    })
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}
