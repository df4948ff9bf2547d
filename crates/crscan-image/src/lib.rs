//! Reads container images: OCI layouts and archives, docker archives, directories; streams layers under limits into a file view.
