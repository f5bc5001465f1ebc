"""The case store: tables (`tables`), engine and transactions (`engine`), and the queries of each
job: cases (`cases`), the mailbox position (`ledger`), outgoing mail (`outbox`), erasure (`retention`).
Rows stay in here; what leaves is the core's values or plain columns."""
