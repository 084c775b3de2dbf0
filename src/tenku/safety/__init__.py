"""Safety and provenance: prompt moderation, invisible watermark, C2PA manifests, verification."""
