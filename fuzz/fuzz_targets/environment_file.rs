//! An `environment.yml` alone (a folder with no project file is a project of one environment):
//! the whole input is the file. Then `detect` (`conda::load`), and for an accepted project every
//! Dockerfile (see `common/conda.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/conda.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let dir = common::project_dir();
    common::write(dir.path(), "environment.yml", data);
    common::exercise(dir.path());
});
