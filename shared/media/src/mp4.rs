//! Location and other metadata out of MP4 uploads, without touching the picture or the
//! sound. Phones and cameras write where a video was shot into its boxes: `©xyz` and
//! `loci` in `udta`, `com.apple.quicktime.location.ISO6709` in `meta`, XMP in `uuid`
//! boxes, and GPS samples of timed metadata tracks (action cameras, drones, phones).
//!
//! Why rewrite in place rather than re-serialise the file: the sample tables (`stco`,
//! `co64`) point at absolute byte offsets in `mdat`, so removing a box before `mdat` moves
//! every sample and means rewriting those tables; a crate that parses and writes MP4
//! (`mp4`, `mp4-atom`) writes back only the boxes it models and drops or mangles the rest.
//! Instead each metadata box keeps its size and becomes a `free` box with zeroed content
//! (players skip `free`), and a track that is neither video nor audio gets its samples'
//! bytes zeroed in `mdat` and becomes `free` too: no byte moves, no offset changes, and
//! the output is exactly as long as the input. A file whose boxes do not tile it exactly
//! (trailing bytes, a box running past its parent: a polyglot or a broken upload) is
//! refused, as is a fragmented file with such a track (its samples are described in each
//! fragment, not in one table).

use crate::Refusal;

/// Boxes that hold metadata and nothing a player needs: blanked wherever they are found.
const METADATA: [&[u8; 4]; 3] = [b"udta", b"meta", b"uuid"];

/// Track handlers that are kept; any other track (timed metadata, text, timecode, hints)
/// is removed with its samples.
const KEPT_TRACKS: [&[u8; 4]; 2] = [b"vide", b"soun"];

/// One box: `[start, end)` of the file, its type, and where its content begins.
#[derive(Debug, Clone, Copy)]
struct Mp4Box {
    kind: [u8; 4],
    start: usize,
    body: usize,
    end: usize,
}

fn malformed(why: impl std::fmt::Display) -> Refusal {
    Refusal(format!("not a well-formed MP4: {why}"))
}

/// The MP4 with its metadata blanked (same length, same media), or why it is refused.
pub fn strip_metadata(bytes: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut out = bytes.to_vec();
    let top = children(&out, 0, out.len(), true)?;
    if top.first().map(|b| &b.kind) != Some(b"ftyp") {
        return Err(malformed("it does not start with ftyp"));
    }
    let moovs: Vec<Mp4Box> = top.iter().filter(|b| &b.kind == b"moov").copied().collect();
    let [moov] = moovs.as_slice() else {
        return Err(malformed(format!("{} moov boxes, not one", moovs.len())));
    };
    let moov_children = children(&out, moov.body, moov.end, false)?;
    let fragmented =
        top.iter().any(|b| &b.kind == b"moof") || moov_children.iter().any(|b| &b.kind == b"mvex");
    for b in &top {
        if is_metadata(b) {
            blank(&mut out, b);
        }
    }
    for b in &moov_children {
        if is_metadata(b) {
            blank(&mut out, b);
        } else if &b.kind == b"trak" {
            strip_track(&mut out, b, fragmented)?;
        }
    }
    Ok(out)
}

fn is_metadata(b: &Mp4Box) -> bool {
    METADATA.contains(&&b.kind)
}

/// Turns `b` into a `free` box of the same size with nothing in it.
fn blank(out: &mut [u8], b: &Mp4Box) {
    out[b.start + 4..b.start + 8].copy_from_slice(b"free");
    out[b.body..b.end].fill(0);
}

/// Blanks a track's metadata boxes, or the whole track and its samples when it is
/// neither video nor audio.
fn strip_track(out: &mut [u8], trak: &Mp4Box, fragmented: bool) -> Result<(), Refusal> {
    let boxes = children(out, trak.body, trak.end, false)?;
    let mdia = find(&boxes, b"mdia")?;
    let mdia_boxes = children(out, mdia.body, mdia.end, false)?;
    let hdlr = find(&mdia_boxes, b"hdlr")?;
    // version and flags (4), pre_defined (4), then the handler type.
    let handler = out
        .get(hdlr.body + 8..hdlr.body + 12)
        .ok_or_else(|| malformed("a short hdlr box"))?;
    if KEPT_TRACKS.iter().any(|kept| &kept[..] == handler) {
        let minf = find(&mdia_boxes, b"minf")?;
        let minf_boxes = children(out, minf.body, minf.end, false)?;
        for b in boxes.iter().chain(&mdia_boxes).chain(&minf_boxes) {
            if is_metadata(b) {
                blank(out, b);
            }
        }
        return Ok(());
    }
    if fragmented {
        return Err(Refusal(format!(
            "a fragmented MP4 with a {} track (timed metadata such as GPS) is not accepted",
            String::from_utf8_lossy(handler)
        )));
    }
    let minf = find(&mdia_boxes, b"minf")?;
    let stbl = find(&children(out, minf.body, minf.end, false)?, b"stbl")?;
    zero_samples(out, &stbl)?;
    blank(out, trak);
    Ok(())
}

fn find(boxes: &[Mp4Box], kind: &[u8; 4]) -> Result<Mp4Box, Refusal> {
    boxes
        .iter()
        .find(|b| &b.kind == kind)
        .copied()
        .ok_or_else(|| malformed(format!("a track without {}", String::from_utf8_lossy(kind))))
}

/// The boxes that exactly fill `data[start..end]`; `top` allows a last box of size 0
/// ("to the end of the file").
fn children(data: &[u8], start: usize, end: usize, top: bool) -> Result<Vec<Mp4Box>, Refusal> {
    let mut boxes = Vec::new();
    let mut pos = start;
    while pos < end {
        let header = data
            .get(pos..pos + 8)
            .filter(|_| pos + 8 <= end)
            .ok_or_else(|| malformed(format!("{} stray bytes at {pos}", end - pos)))?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let kind = [header[4], header[5], header[6], header[7]];
        let (size, header_len) = match size32 {
            0 if top => ((end - pos) as u64, 8),
            0 => return Err(malformed("a nested box of size 0")),
            1 => {
                let large = data
                    .get(pos + 8..pos + 16)
                    .ok_or_else(|| malformed("a cut 64-bit box size"))?;
                (u64::from_be_bytes(large.try_into().map_err(malformed)?), 16)
            }
            n => (u64::from(n), 8),
        };
        let box_end = usize::try_from(size)
            .ok()
            .and_then(|size| pos.checked_add(size))
            .filter(|&e| size >= header_len as u64 && e <= end)
            .ok_or_else(|| {
                malformed(format!(
                    "the {} box at {pos} runs past its parent",
                    String::from_utf8_lossy(&kind)
                ))
            })?;
        boxes.push(Mp4Box {
            kind,
            start: pos,
            body: pos + header_len,
            end: box_end,
        });
        pos = box_end;
    }
    Ok(boxes)
}

/// Reads big-endian numbers from a box's content, refusing reads past its end.
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Fields<'_> {
    fn u32(&mut self) -> Result<u32, Refusal> {
        let bytes = self
            .data
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| malformed("a sample table cut short"))?;
        self.pos += 4;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, Refusal> {
        let high = u64::from(self.u32()?);
        Ok((high << 32) | u64::from(self.u32()?))
    }
}

fn fields<'a>(out: &'a [u8], b: &Mp4Box) -> Fields<'a> {
    // Skips the full box's version and flags.
    Fields {
        data: &out[b.body..b.end],
        pos: 4,
    }
}

/// Zeroes, in `mdat`, the bytes of every sample the sample table `stbl` describes.
fn zero_samples(out: &mut [u8], stbl: &Mp4Box) -> Result<(), Refusal> {
    let boxes = children(out, stbl.body, stbl.end, false)?;
    let table = |kind: &[u8; 4]| boxes.iter().find(|b| &b.kind == kind).copied();
    let stsz = table(b"stsz").ok_or_else(|| {
        Refusal("a metadata track whose samples cannot be located (no stsz)".to_owned())
    })?;
    let stsc = find(&boxes, b"stsc")?;
    // Chunk offsets, 32 or 64 bits.
    let mut offsets = Vec::new();
    if let Some(stco) = table(b"stco") {
        let mut f = fields(out, &stco);
        for _ in 0..f.u32()? {
            offsets.push(u64::from(f.u32()?));
        }
    } else if let Some(co64) = table(b"co64") {
        let mut f = fields(out, &co64);
        for _ in 0..f.u32()? {
            offsets.push(f.u64()?);
        }
    } else {
        return Err(malformed("a track without chunk offsets"));
    }
    // Samples per chunk, from the first chunk of each run.
    let mut runs = Vec::new();
    let mut f = fields(out, &stsc);
    for _ in 0..f.u32()? {
        let (first_chunk, per_chunk, _description) = (f.u32()?, f.u32()?, f.u32()?);
        runs.push((u64::from(first_chunk), u64::from(per_chunk)));
    }
    // Sample sizes: one for all, or one each.
    let mut sizes = fields(out, &stsz);
    let (fixed, count) = (u64::from(sizes.u32()?), u64::from(sizes.u32()?));
    let mut ranges = Vec::new();
    let mut sample = 0u64;
    for (index, &offset) in offsets.iter().enumerate() {
        let chunk = index as u64 + 1;
        let per_chunk = runs
            .iter()
            .rev()
            .find(|(first, _)| *first <= chunk)
            .map_or(0, |(_, n)| *n);
        let n = per_chunk.min(count.saturating_sub(sample));
        let length = if fixed != 0 {
            n.saturating_mul(fixed)
        } else {
            let mut total = 0u64;
            for _ in 0..n {
                total = total.saturating_add(u64::from(sizes.u32()?));
            }
            total
        };
        sample += n;
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(length).ok())
            .and_then(|(start, len)| Some(start..start.checked_add(len)?))
            .filter(|r| r.end <= out.len())
            .ok_or_else(|| malformed("a sample outside the file"))?;
        ranges.push(range);
    }
    for range in ranges {
        out[range].fill(0);
    }
    Ok(())
}

/// Test material: MP4s that say where they were shot.
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures {
    /// Where the fixtures were "shot" (ISO 6709), as the location boxes carry it.
    pub const LOCATION: &str = "+48.8584+002.2945/";

    fn mp4_box(kind: &[u8], content: &[&[u8]]) -> Vec<u8> {
        let size = 8 + content.iter().map(|c| c.len()).sum::<usize>();
        let mut out = (size as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        for part in content {
            out.extend_from_slice(part);
        }
        out
    }

    fn full(kind: &[u8], content: &[&[u8]]) -> Vec<u8> {
        let mut parts: Vec<&[u8]> = vec![&[0, 0, 0, 0]];
        parts.extend_from_slice(content);
        mp4_box(kind, &parts)
    }

    fn track(handler: &[u8; 4], stbl: &[u8], udta: &[u8]) -> Vec<u8> {
        let hdlr = full(b"hdlr", &[&[0; 4], handler, &[0; 12], b"handler\0"]);
        let minf = mp4_box(b"minf", &[stbl]);
        let mdia = mp4_box(b"mdia", &[&full(b"mdhd", &[&[0; 20]]), &hdlr, &minf]);
        mp4_box(b"trak", &[&full(b"tkhd", &[&[0; 80]]), &mdia, udta])
    }

    /// A small MP4 that carries its location four ways: `©xyz` in the movie's `udta`, an
    /// Apple `meta` location key, a `loci`-holding `udta` in its video track, and a timed
    /// metadata track whose one sample (in `mdat`) is a GPS fix. Its video "frames" are
    /// the bytes `frame-data-`, repeated.
    pub fn mp4_with_location() -> Vec<u8> {
        let ftyp = mp4_box(b"ftyp", &[b"isom", &[0, 0, 2, 0], b"isommp41"]);
        let frames = b"frame-data-".repeat(20);
        let gps = format!("GPS fix {LOCATION} 35.0m");
        let movie = |gps_offset: u32| {
            let xyz = [
                &[0u8, LOCATION.len() as u8, 0x15, 0xC7][..],
                LOCATION.as_bytes(),
            ];
            let udta = mp4_box(b"udta", &[&mp4_box(b"\xA9xyz", &xyz)]);
            let apple = mp4_box(
                b"meta",
                &[
                    &full(b"hdlr", &[&[0; 4], b"mdta", &[0; 12], b"\0"]),
                    &mp4_box(b"keys", &[&[0; 4], b"com.apple.quicktime.location.ISO6709"]),
                    &mp4_box(b"ilst", &[LOCATION.as_bytes()]),
                ],
            );
            let video_stbl = mp4_box(
                b"stbl",
                &[
                    &full(b"stsd", &[&[0; 4]]),
                    &full(b"stsz", &[&[0; 8]]),
                    &full(b"stsc", &[&[0; 4]]),
                    &full(b"stco", &[&[0; 4]]),
                ],
            );
            let loci = mp4_box(b"udta", &[&full(b"loci", &[LOCATION.as_bytes()])]);
            let gps_stbl = mp4_box(
                b"stbl",
                &[
                    &full(b"stsd", &[&[0; 4]]),
                    &full(
                        b"stsz",
                        &[
                            &0u32.to_be_bytes(),
                            &1u32.to_be_bytes(),
                            &(gps.len() as u32).to_be_bytes(),
                        ],
                    ),
                    &full(
                        b"stsc",
                        &[
                            &1u32.to_be_bytes(),
                            &1u32.to_be_bytes(),
                            &1u32.to_be_bytes(),
                            &1u32.to_be_bytes(),
                        ],
                    ),
                    &full(b"stco", &[&1u32.to_be_bytes(), &gps_offset.to_be_bytes()]),
                ],
            );
            mp4_box(
                b"moov",
                &[
                    &full(b"mvhd", &[&[0; 96]]),
                    &track(b"vide", &video_stbl, &loci),
                    &track(b"meta", &gps_stbl, &[]),
                    &udta,
                    &apple,
                ],
            )
        };
        let moov_len = movie(0).len();
        let gps_offset = (ftyp.len() + moov_len + 8 + frames.len()) as u32;
        let mdat = mp4_box(b"mdat", &[&frames, gps.as_bytes()]);
        [ftyp, movie(gps_offset), mdat].concat()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::fixtures::{LOCATION, mp4_with_location};
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn location_is_blanked_and_nothing_moves() {
        // GIVEN a video that says where it was shot, four ways
        let upload = mp4_with_location();
        assert!(contains(&upload, LOCATION.as_bytes()) && contains(&upload, b"\xA9xyz"));
        // WHEN its metadata is stripped
        let clean = strip_metadata(&upload).unwrap();
        // THEN no location is left, anywhere
        for gone in [
            LOCATION.as_bytes(),
            b"\xA9xyz",
            b"loci",
            b"GPS fix",
            b"com.apple",
        ] {
            assert!(!contains(&clean, gone), "{}", String::from_utf8_lossy(gone));
        }
        // AND the file has the same length and boxes where they were; the video track and
        // its frames are untouched
        assert_eq!(clean.len(), upload.len());
        let top = children(&clean, 0, clean.len(), true).unwrap();
        let kinds: Vec<&[u8; 4]> = top.iter().map(|b| &b.kind).collect();
        assert_eq!(kinds, vec![b"ftyp", b"moov", b"mdat"]);
        let moov = children(&clean, top[1].body, top[1].end, false).unwrap();
        let kinds: Vec<&[u8; 4]> = moov.iter().map(|b| &b.kind).collect();
        assert_eq!(kinds, vec![b"mvhd", b"trak", b"free", b"free", b"free"]);
        assert!(contains(&clean, b"vide"));
        assert!(contains(&clean, &b"frame-data-".repeat(20)));
        // AND stripping again changes nothing
        assert_eq!(strip_metadata(&clean).unwrap(), clean);
    }

    #[test]
    fn a_file_that_is_not_only_boxes_is_refused() {
        let good = mp4_with_location();
        // Trailing bytes (a polyglot's payload).
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"PK\x03\x04 a zip after the video");
        assert!(
            strip_metadata(&trailing)
                .unwrap_err()
                .0
                .contains("not a well-formed MP4")
        );
        // A box that claims more than there is.
        let mut cut = good.clone();
        cut.truncate(good.len() - 5);
        assert!(strip_metadata(&cut).is_err());
        // No movie box.
        let ftyp_only = &good[..24];
        assert!(strip_metadata(ftyp_only).unwrap_err().0.contains("0 moov"));
        assert!(strip_metadata(b"").is_err());
    }

    #[test]
    fn a_fragmented_file_with_a_metadata_track_is_refused() {
        let mut upload = mp4_with_location();
        upload.extend_from_slice(&[0, 0, 0, 8]);
        upload.extend_from_slice(b"moof");
        let err = strip_metadata(&upload).unwrap_err();
        assert!(err.0.contains("fragmented"), "{err}");
    }
}
