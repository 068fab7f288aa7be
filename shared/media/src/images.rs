//! The one pipeline every stored image goes through (post media and avatars): the real
//! type is checked against the declared one, the size in pixels is read from the header
//! and refused above a cap *before* any pixel is decoded (a small file can claim a
//! 20,000 × 20,000 canvas: a decompression bomb), the pixels are decoded and turned
//! upright (the EXIF orientation, the only metadata worth keeping, kept by rotating the
//! pixels), and a fresh file is encoded from them. What is stored is pixels only: no EXIF,
//! GPS, XMP or ICC block, and none of the bytes a polyglot hides after or inside the image.

use std::io::Cursor;
use std::sync::OnceLock;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::{MediaType, Refusal};

/// The largest image, in pixels, decoded by default: about 50 MP (an 8,660 × 5,773 photo,
/// more than phone cameras take). Deployments set `MaxImagePixels`.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// The pixel cap of this function: `MAX_IMAGE_PIXELS` (template parameter
/// `MaxImagePixels`), read once; [`DEFAULT_MAX_PIXELS`] when unset. A value that is not a
/// positive number is a deployment mistake: it is logged and the default applies, so a
/// typo never lifts the cap.
pub fn max_pixels() -> u64 {
    static MAX: OnceLock<u64> = OnceLock::new();
    *MAX.get_or_init(|| match std::env::var("MAX_IMAGE_PIXELS") {
        Err(_) => DEFAULT_MAX_PIXELS,
        Ok(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::error!(
                    value = raw,
                    "MAX_IMAGE_PIXELS is not a positive number; the default applies"
                );
                DEFAULT_MAX_PIXELS
            }
        },
    })
}

/// Decodes `bytes`, declared as `declared`, to upright pixels: refused when the file is
/// not of the declared image type, claims more than `max_pixels` pixels (checked from the
/// header, before decoding), or does not decode.
pub fn decode_upright(
    bytes: &[u8],
    declared: MediaType,
    max_pixels: u64,
) -> Result<DynamicImage, Refusal> {
    let format = match declared {
        MediaType::Jpeg => ImageFormat::Jpeg,
        MediaType::Png => ImageFormat::Png,
        MediaType::Webp => ImageFormat::WebP,
        MediaType::Mp4 => return Err(Refusal("a video is not an image".to_owned())),
    };
    let real = MediaType::sniff(&bytes[..bytes.len().min(16)]);
    if real != Some(declared) {
        return Err(Refusal(format!(
            "declared {} but the file is {}",
            declared.mime(),
            real.map_or("of an unknown type", MediaType::mime)
        )));
    }
    let unreadable = |e: image::ImageError| Refusal(format!("not a readable image: {e}"));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // A second bound, on what decoding may allocate (50 MP of 16-bit RGBA is 400 MB).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    // Reads the header only: no pixel is decoded yet.
    let mut decoder = reader.into_decoder().map_err(unreadable)?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(Refusal(format!(
            "{width} × {height} is {pixels} pixels, more than the {max_pixels} accepted"
        )));
    }
    let orientation = decoder.orientation().map_err(unreadable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The image scaled down (never up) to fit within `max_side` × `max_side`.
pub fn fit_within(image: &DynamicImage, max_side: u32) -> DynamicImage {
    if image.width() <= max_side && image.height() <= max_side {
        image.clone()
    } else {
        image.resize(max_side, max_side, image::imageops::FilterType::Triangle)
    }
}

/// A fresh file of `media_type` holding only `image`'s pixels: JPEG at quality 85, PNG,
/// or lossless WebP (the only WebP the encoder writes).
pub fn encode(image: &DynamicImage, media_type: MediaType) -> Result<Vec<u8>, Refusal> {
    let failed = |e: image::ImageError| Refusal(format!("cannot encode the image: {e}"));
    let mut out = Cursor::new(Vec::new());
    match media_type {
        MediaType::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            image
                .to_rgb8()
                .write_with_encoder(encoder)
                .map_err(failed)?;
        }
        MediaType::Png => image.write_to(&mut out, ImageFormat::Png).map_err(failed)?,
        MediaType::Webp => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            image
                .to_rgba8()
                .write_with_encoder(encoder)
                .map_err(failed)?;
        }
        MediaType::Mp4 => return Err(Refusal("a video is not an image".to_owned())),
    }
    Ok(out.into_inner())
}

/// Test material: images with metadata, and decompression bombs.
#[cfg(any(test, feature = "test-support"))]
pub mod fixtures {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A JPEG with an EXIF block carrying GPS coordinates (`GPSLatitudeRef` = 'N') and
    /// orientation 6 (rotate 90°).
    pub fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, _| {
            image::Rgb([(x % 255) as u8, 100, 150])
        }));
        let plain = encode(&image, MediaType::Jpeg).unwrap();
        // TIFF header (little endian), IFD0 with Orientation=6 and a GPS IFD pointer,
        // then a GPS IFD with GPSLatitudeRef = 'N'.
        let mut tiff: Vec<u8> = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0, 38, 0, 0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = plain[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    /// A valid black 1-bit PNG of `width` × `height`: tens of kilobytes that decode to
    /// `width × height` pixels (a 20,000 × 20,000 one to 400 MP, 1.6 GB as RGBA).
    pub fn black_png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::Balanced);
        let mut writer = encoder.write_header().unwrap();
        let row = vec![0u8; width.div_ceil(8) as usize];
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..height {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
        writer.finish().unwrap();
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::fixtures::{black_png, jpeg_with_gps};
    use super::*;

    fn has_exif(bytes: &[u8]) -> bool {
        // An APP1 "Exif" segment, or a PNG eXIf chunk.
        bytes.windows(4).any(|w| w == b"Exif" || w == b"eXIf")
    }

    #[test]
    fn images_come_out_upright_and_without_metadata() {
        let upload = jpeg_with_gps(160, 120);
        assert!(has_exif(&upload), "the fixture has EXIF");
        let image = decode_upright(&upload, MediaType::Jpeg, DEFAULT_MAX_PIXELS).unwrap();
        // Orientation 6: the landscape is turned upright.
        assert_eq!((image.width(), image.height()), (120, 160));
        for kind in [MediaType::Jpeg, MediaType::Png, MediaType::Webp] {
            let out = encode(&image, kind).unwrap();
            assert!(!has_exif(&out), "{kind:?}");
            assert_eq!(MediaType::sniff(&out), Some(kind));
            let back = decode_upright(&out, kind, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!((back.width(), back.height()), (120, 160), "{kind:?}");
        }
    }

    #[test]
    fn a_huge_canvas_is_refused_from_its_header() {
        // GIVEN a small file claiming 20,000 × 20,000 pixels
        let bomb = black_png(20_000, 20_000);
        assert!(bomb.len() < 1_000_000, "{} bytes", bomb.len());
        // WHEN it is decoded THEN it is refused, naming its size, without decoding
        let err = decode_upright(&bomb, MediaType::Png, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.0.contains("400000000 pixels"), "{err}");
        // AND the cap is the caller's: a small image passes, one pixel more does not
        let small = black_png(100, 50);
        assert!(decode_upright(&small, MediaType::Png, 5_000).is_ok());
        assert!(decode_upright(&small, MediaType::Png, 4_999).is_err());
    }

    #[test]
    fn what_is_not_the_declared_image_is_refused() {
        let err =
            decode_upright(b"just text, no image", MediaType::Png, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.0.contains("declared image/png"), "{err}");
        let jpeg = jpeg_with_gps(8, 8);
        assert!(decode_upright(&jpeg, MediaType::Webp, DEFAULT_MAX_PIXELS).is_err());
        let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
        broken.extend_from_slice(&[0; 64]);
        let err = decode_upright(&broken, MediaType::Png, DEFAULT_MAX_PIXELS).unwrap_err();
        assert!(err.0.contains("not a readable image"), "{err}");
        assert!(decode_upright(&[], MediaType::Png, DEFAULT_MAX_PIXELS).is_err());
    }

    #[test]
    fn a_polyglot_keeps_only_its_pixels() {
        // GIVEN a PNG with a script appended (a file that is two things at once)
        let mut polyglot = black_png(16, 16);
        polyglot.extend_from_slice(b"<script>alert(1)</script>");
        // WHEN it goes through the pipeline THEN only a fresh PNG comes out
        let image = decode_upright(&polyglot, MediaType::Png, DEFAULT_MAX_PIXELS).unwrap();
        let out = encode(&image, MediaType::Png).unwrap();
        assert!(!out.windows(7).any(|w| w == b"<script"));
    }

    #[test]
    fn large_images_are_scaled_down_to_fit() {
        let image = DynamicImage::new_rgb8(2000, 1000);
        let fitted = fit_within(&image, 1080);
        assert_eq!((fitted.width(), fitted.height()), (1080, 540));
        let small = fit_within(&DynamicImage::new_rgb8(100, 300), 1080);
        assert_eq!((small.width(), small.height()), (100, 300));
    }
}
