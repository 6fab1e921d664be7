//! Keyless upstream: Microsoft Entra ID bearer tokens on event requests
//! (feature `entra`). Work in progress.
