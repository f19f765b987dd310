"""Accounts (Auth.Mode accounts): users, browser sessions and API tokens in a SQLite file under
the data dir (`db`), what can be done with them (`store`), the guard on repeated failed logins
(`limiter`), and the command line that manages them (`cli`)."""
