"""The mail channel: SMTP server, MIME parsing, loops, sender trust, inbound processing,
the reply channel and the outbound relay."""
