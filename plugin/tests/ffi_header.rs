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

#[test]
fn status_codes_match_the_code() {
    let all = [
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
        Status::Internal,
    ];
    let expected = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 99];
    for (status, value) in all.iter().zip(expected) {
        assert_eq!(*status as i32, value, "{status:?} was renumbered");
    }
    let constants = HEADER.matches("TAE_EDU_STATUS_").count();
    assert!(constants >= all.len(), "{constants}");
    for line in [
        "TAE_EDU_STATUS_OK = 0,",
        "TAE_EDU_STATUS_PANIC = 6,",
        "TAE_EDU_STATUS_REQUEST_TOO_LARGE = 13,",
        "TAE_EDU_STATUS_INTERNAL = 99,",
    ] {
        assert!(HEADER.contains(line), "{line}");
    }
    assert!(HEADER.contains("typedef int32_t TaeEduStatus;"));
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
