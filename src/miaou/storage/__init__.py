"""Platform storage for media: the content-addressed blob store every wing shares."""
