//! The debug oracle (placeholder while the scheme is brought up).

use super::node::{INode, Main, SNode};

/// A node of any kind.
pub(crate) enum Node<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
    S(*mut SNode<K, V>),
}

/// A GCAS on `i` replaced `old` by `new`.
///
/// # Safety
/// The nodes are allocated.
pub(crate) unsafe fn on_commit<K, V>(
    _i: *mut INode<K, V>,
    _old: *mut Main<K, V>,
    _new: *mut Main<K, V>,
) {
}

/// A node is about to be freed.
///
/// # Safety
/// The node is allocated.
pub(crate) unsafe fn on_free<K, V>(_n: Node<K, V>) {}

/// The root pointer moved from `old` to `new` (a snapshot's or clear's RDCSS).
pub(crate) fn on_root_swap<K, V>(_old: *mut INode<K, V>, _new: *mut INode<K, V>) {}

/// A new root edge to `r` (a snapshot handle, a fork's root).
pub(crate) fn on_new_root<K, V>(_r: *mut INode<K, V>) {}

/// A root edge to `r` went (a trie or snapshot handle dropped, or the old tree of a clear).
pub(crate) fn on_dropped_root<K, V>(_r: *mut INode<K, V>) {}
