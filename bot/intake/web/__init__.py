"""The web chat: the widget, its pages, the socket and the conversation."""
