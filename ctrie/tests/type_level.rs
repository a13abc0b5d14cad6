//! Type-level promises that no runtime checker can see, pinned by compile-fail tests
//! (`tests/ui/`, each with the compiler's expected error): the trie, its handles, snapshots
//! and iterators are invariant in `K` and `V`; a snapshot has no mutators; a reference from
//! `pin().get()` cannot outlive its handle; a trie of `Rc`s is neither `Send` nor `Sync`.
//!
//! After an intentional change of a diagnostic (a compiler upgrade), regenerate the expected
//! output with `TRYBUILD=overwrite cargo test -p lockfree-ctrie --test type_level` and review the diff.

#[test]
#[cfg_attr(miri, ignore = "runs the compiler; not a Miri test")]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
