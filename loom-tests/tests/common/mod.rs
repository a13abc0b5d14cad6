//! What the loom models of ctrie and of snapcache share: ending a model with all of ctrie's
//! reclamation done while its threads are alive.
#![allow(dead_code)]

use loom::thread;

/// Drives reclamation until the debug oracle sees no unreachable node left, at most 4 rounds
/// (every round's atomics are places where loom may preempt, so rounds cost interleavings).
/// Every model ends with all of its reclamation done while its threads are alive
/// ([`Kept::finish`]): loom then explores it too, and nothing is left for loom's teardown, where
/// a deferred function could not even pin. Chains of deferred work (a fork's tree, then the era
/// it reserved, then the era's unlinking) take a few rounds each.
pub fn flush() {
    for _ in 0..4 {
        ctrie::pin().flush();
        let (live, reachable, _) = ctrie::__census();
        if live.iter().sum::<usize>() == reachable {
            return;
        }
    }
}

/// A model thread that stays alive, unpinned, after its work, until [`Kept::finish`]: under
/// loom, crossbeam-epoch stops advancing its epoch once a model thread has finished (its
/// participant is only unregistered when loom tears the execution down), so a model whose
/// reclamation must run to the end keeps its threads alive until then. They wait blocked on
/// a channel, not spinning: a blocked thread adds no interleavings to the model. A deferred
/// function queued by a thread stays in that thread's own bag until it flushes, so the end of
/// a model has both threads flush in turn until nothing is left.
pub struct Kept {
    done: loom::sync::mpsc::Receiver<()>,
    commands: loom::sync::mpsc::Sender<bool>,
    handle: thread::JoinHandle<()>,
}

pub fn keep(f: impl FnOnce() + Send + 'static) -> Kept {
    let (done_tx, done) = loom::sync::mpsc::channel();
    let (commands, commands_rx) = loom::sync::mpsc::channel::<bool>();
    let handle = thread::spawn(move || {
        f();
        // Hand this thread's deferred work (queued in its own bag) to the others.
        ctrie::pin().flush();
        done_tx.send(()).unwrap();
        // `true`: flush once more and report; `false`: the model is over.
        while commands_rx.recv().unwrap() {
            ctrie::pin().flush();
            done_tx.send(()).unwrap();
        }
    });
    Kept {
        done,
        commands,
        handle,
    }
}

impl Kept {
    /// Waits until the thread's work is done.
    pub fn wait(&self) {
        self.done.recv().unwrap();
    }

    /// Runs the model's remaining reclamation on both threads until nothing is left (every
    /// trie and snapshot of the model must be dropped by then), then lets the thread end.
    /// (Call [`Kept::wait`] first.)
    pub fn finish(self) {
        for _ in 0..ROUNDS {
            ctrie::pin().flush();
            self.commands.send(true).unwrap();
            self.done.recv().unwrap();
            if ctrie::__census() == ([0; 5], 0, 0) {
                self.commands.send(false).unwrap();
                self.handle.join().unwrap();
                return;
            }
        }
        panic!(
            "reclamation did not finish in {ROUNDS} rounds: (nodes per kind, reachable, eras) = {:?}",
            ctrie::__census()
        );
    }
}

/// Rounds of flushing (on both threads) a model's end may take: enough for the longest chain of
/// deferred work in these models (a fork's tree, the era it reserved, that era's root).
const ROUNDS: usize = 16;
