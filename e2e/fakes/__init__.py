"""In-process fakes of the service's peers: a Matrix homeserver (HTTPS) and a LiveKit SFU (Twirp)."""
