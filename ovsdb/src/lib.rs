//! OVSDB client (RFC 7047): transact, monitor, echo, typed helpers for Open vSwitch's schema
