//! `io.l5d.fs`: one file per service under a root directory.
