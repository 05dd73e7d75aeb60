"""Use cases every channel shares: tickets, conversation, deadlines, callbacks, consent, floods,
people; they reach the outside through ports (ReplyChannel, TicketAnnouncer, AnswerRoute)."""
