//! The files D9 returns: the original, the original plus a signature manifest page (what TAE
//! calls "assinado com manifesto"), and a zip of both.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, ObjectId, Stream, StringFormat};

/// One line of the manifest page.
pub struct ManifestLine(pub String);

/// Latin-1 (WinAnsi) bytes for the standard Helvetica font; other characters become `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if (c as u32) < 256 {
                c as u32 as u8
            } else {
                b'?'
            }
        })
        .collect()
}

fn manifest_content(title: &str, lines: &[ManifestLine]) -> Vec<u8> {
    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 16.into()]),
        Operation::new("Td", vec![50.into(), 790.into()]),
        Operation::new(
            "Tj",
            vec![Object::String(win_ansi(title), StringFormat::Literal)],
        ),
        Operation::new("Tf", vec!["F1".into(), 10.into()]),
    ];
    for line in lines {
        ops.push(Operation::new("Td", vec![0.into(), (-16).into()]));
        ops.push(Operation::new(
            "Tj",
            vec![Object::String(win_ansi(&line.0), StringFormat::Literal)],
        ));
    }
    ops.push(Operation::new("ET", vec![]));
    Content { operations: ops }.encode().unwrap_or_default()
}

fn add_manifest_page(
    doc: &mut Document,
    pages_id: ObjectId,
    title: &str,
    lines: &[ManifestLine],
) -> ObjectId {
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let content_id = doc.add_object(Stream::new(dictionary! {}, manifest_content(title, lines)));
    doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Contents" => content_id,
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
    })
}

/// The original PDF with a manifest page appended. When the original cannot be parsed, a
/// one-page PDF with the manifest alone (its first line says so).
pub fn with_manifest(original: &[u8], title: &str, lines: &[ManifestLine]) -> Vec<u8> {
    if let Some(bytes) = append_to_original(original, title, lines) {
        return bytes;
    }
    let mut all = vec![ManifestLine(
        "(o arquivo original não pôde ser lido para anexar o manifesto)".to_string(),
    )];
    all.extend(lines.iter().map(|l| ManifestLine(l.0.clone())));
    manifest_only(title, &all)
}

fn append_to_original(original: &[u8], title: &str, lines: &[ManifestLine]) -> Option<Vec<u8>> {
    let mut doc = Document::load_mem(original).ok()?;
    let pages_id = doc
        .catalog()
        .ok()?
        .get(b"Pages")
        .ok()?
        .as_reference()
        .ok()?;
    let page_id = add_manifest_page(&mut doc, pages_id, title, lines);
    let pages = doc.get_dictionary_mut(pages_id).ok()?;
    let count = pages.get(b"Count").ok()?.as_i64().ok()?;
    pages.set("Count", count + 1);
    pages
        .get_mut(b"Kids")
        .ok()?
        .as_array_mut()
        .ok()?
        .push(page_id.into());
    let mut out = Vec::new();
    doc.save_to(&mut out).ok()?;
    Some(out)
}

/// A one-page PDF holding only the manifest.
pub fn manifest_only(title: &str, lines: &[ManifestLine]) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let page_id = add_manifest_page(&mut doc, pages_id, title, lines);
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    let _ = doc.save_to(&mut out);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zip archive (stored, no compression) of the given files.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, bytes) in files {
        let offset = out.len() as u32;
        let crc = crc32(bytes);
        let size = bytes.len() as u32;
        let name_bytes = name.as_bytes();
        // Local file header; bit 11 = UTF-8 names.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&0x0800u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // stored
        out.extend_from_slice(&0u16.to_le_bytes()); // time
        out.extend_from_slice(&0x21u16.to_le_bytes()); // date 1980-01-01
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name_bytes);
        out.extend_from_slice(bytes);
        // Central directory entry.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0x21u16.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]); // extra, comment, disk, internal attrs
        central.extend_from_slice(&0u32.to_le_bytes()); // external attrs
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name_bytes);
    }
    let central_offset = out.len() as u32;
    let central_size = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&(files.len() as u16).to_le_bytes());
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn manifest_is_appended_as_a_page() {
        let original = manifest_only("Contrato", &[ManifestLine("página 1".into())]);
        assert_eq!(Document::load_mem(&original).unwrap().get_pages().len(), 1);
        let signed = with_manifest(
            &original,
            "Manifesto de assinaturas",
            &[ManifestLine("Assinado por Maria da Conceição".into())],
        );
        let doc = Document::load_mem(&signed).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        let text = doc.extract_text(&[2]).unwrap_or_default();
        assert!(text.contains("Manifesto"), "{text}");
    }

    #[test]
    fn unreadable_original_still_gives_a_pdf() {
        let out = with_manifest(b"%PDF-1.4 not really", "Manifesto", &[]);
        assert!(out.starts_with(b"%PDF-"));
        assert_eq!(Document::load_mem(&out).unwrap().get_pages().len(), 1);
    }

    #[test]
    fn zip_has_signatures_and_names() {
        let z = zip(&[("a.pdf".into(), b"hello".to_vec())]);
        assert!(z.starts_with(b"PK\x03\x04"));
        assert!(z.windows(5).any(|w| w == b"a.pdf"));
        assert!(z.windows(4).any(|w| w == b"PK\x05\x06"));
    }
}
