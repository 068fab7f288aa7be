//! Avatar media: the rules (an image of at most 5 MB); the types, upload forms and S3
//! adapter are shutter-media's.

pub use shutter_media::{
    MediaStore, MediaType as ImageType, MemoryMedia, ObjectInfo, S3MediaStore, UploadForm,
};

pub const MAX_AVATAR_BYTES: u64 = 5 * 1024 * 1024;

/// The image type an avatar declared, if it is one an avatar may have.
pub fn avatar_type(mime: &str) -> Option<ImageType> {
    ImageType::from_mime(mime).filter(|t| t.is_image())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_avatar_is_an_image() {
        assert_eq!(avatar_type("image/PNG"), Some(ImageType::Png));
        assert_eq!(avatar_type("video/mp4"), None);
        assert_eq!(avatar_type("text/plain"), None);
    }
}
