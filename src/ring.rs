//! Decrypting a whole ring: every key's master key, with private-key work spread over the cores,
//! remote unwraps overlapped, and memory flat however large the ring is.
//!
//! [`decrypt`] takes the ring's elements lazily (any iterator of [`Source`]s: files of a
//! directory from [`directory`], parsed [`Key`]s, elements of a store) and yields one
//! [`Decrypted`] per element as soon as it can, in input order by default. At most
//! [`RingOptions::concurrency`] elements are between the input and the consumer at any time
//! (queued, being read, being decrypted, or finished and waiting for their turn), so a ring of
//! 10,000 keys never has more than that many keys or master keys in memory.
//!
//! # How the work is spread
//!
//! The [`XmlDecryptor`](crate::protector::XmlDecryptor) seam is async, but what a decryptor
//! does differs: a certificate decryptor does all its work (an RSA private operation, about
//! 0.2–1.2 ms at 2048 bits) inside its first poll, a Key Vault decryptor waits on the network.
//! One mechanism serves both: [`RingOptions::parallelism`] worker threads, each a tiny executor
//! that reads and parses an element and polls its decryption future. A CPU-bound future finishes
//! in that first poll, on the worker, so N workers are N cores of RSA. A future that waits is
//! kept by its worker, which picks up more elements meanwhile and polls the waiting one again
//! when its waker fires, so remote unwraps overlap up to the concurrency bound whatever the
//! number of threads. The caller's task only hands out elements and collects results; it never
//! runs a decryption, so an async caller's executor is not blocked by RSA.
//!
//! With `parallelism` 0 there are no threads: the futures are polled by whoever polls the
//! stream, on its executor (concurrent, but on one thread).
//!
//! # Runtimes
//!
//! The stream needs no particular runtime: poll it with [`RingDecrypt::next_async`] (or
//! [`RingDecrypt::poll_next`]) from any executor, or iterate it as a blocking [`Iterator`] from
//! synchronous code. Decryptors built on tokio (the Key Vault client) need a tokio context:
//! when dpwrap is built with tokio (features `azure`, `redis`, `test-util`) and [`decrypt`] is
//! called inside a tokio runtime, the workers enter that runtime, whose threads keep driving the
//! sockets and timers. From inside a tokio runtime use `next_async`, not the blocking iterator.
//!
//! Dropping the stream cancels it: elements not handed out are never read, and futures still
//! waiting are dropped by their workers (which cancels their requests) as soon as the workers
//! notice, without the drop waiting for them.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};

use crate::decryptors::Decryptors;
use crate::error::{Error, ErrorKind, Result};
use crate::key_file::{self, Key, RingElement};
use crate::secret::MasterKey;
use crate::store::StoredElement;
use crate::xml::Element;

/// The default bound on elements in flight: enough to overlap eight Key Vault round trips.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// A check run on every key before it is decrypted (on the worker, after parsing): an `Err`
/// becomes the key's outcome and the key never reaches a decryptor. Used for the authenticated
/// key policy ([`crate::authentication`]): planted keys must not reach a private key or a vault.
#[derive(Clone)]
pub struct KeyGate(pub Arc<GateFn>);

/// The check of a [`KeyGate`].
pub type GateFn = dyn Fn(&Key) -> Result<()> + Send + Sync;

impl std::fmt::Debug for KeyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyGate")
    }
}

impl PartialEq for KeyGate {
    fn eq(&self, other: &KeyGate) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for KeyGate {}

/// What the workers share: the decryptors and the gate.
type Work = (Decryptors, Option<KeyGate>);

/// How a ring is decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingOptions {
    /// Worker threads that read, parse and decrypt (default: the available cores). 0 runs
    /// everything on the task that polls the stream.
    pub parallelism: usize,
    /// Elements in flight at most, between the input and the consumer (default
    /// [`DEFAULT_CONCURRENCY`], raised to twice the parallelism so every core has work queued).
    /// This bounds memory and, for remote decryptors, the requests in flight. At least 1.
    pub concurrency: usize,
    /// Yield results in input order (default) rather than as they complete. Each result carries
    /// its input position either way.
    pub ordered: bool,
    /// A check every key must pass before it is decrypted (none by default).
    pub gate: Option<KeyGate>,
}

impl Default for RingOptions {
    fn default() -> RingOptions {
        let parallelism = available_parallelism();
        RingOptions {
            parallelism,
            concurrency: DEFAULT_CONCURRENCY.max(parallelism.saturating_mul(2)),
            ordered: true,
            gate: None,
        }
    }
}

impl RingOptions {
    /// One element at a time on the polling task: no threads, no overlap.
    pub fn sequential() -> RingOptions {
        RingOptions {
            parallelism: 0,
            concurrency: 1,
            ordered: true,
            gate: None,
        }
    }

    /// The defaults with `parallelism` worker threads.
    pub fn with_parallelism(parallelism: usize) -> RingOptions {
        RingOptions {
            parallelism,
            concurrency: DEFAULT_CONCURRENCY.max(parallelism.saturating_mul(2)),
            ordered: true,
            gate: None,
        }
    }

    /// These options with at most `concurrency` elements in flight.
    pub fn concurrency(mut self, concurrency: usize) -> RingOptions {
        self.concurrency = concurrency;
        self
    }

    /// These options with `gate` checked on every key before it is decrypted.
    pub fn gate(mut self, gate: KeyGate) -> RingOptions {
        self.gate = Some(gate);
        self
    }

    /// These options yielding results as they complete.
    pub fn unordered(mut self) -> RingOptions {
        self.ordered = false;
        self
    }
}

/// The number of cores this process may use (1 when the system will not say).
pub fn available_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One element of a ring to decrypt: a file (read and parsed on a worker), an element, or a
/// parsed key, with the name it is reported under.
pub struct Source {
    name: String,
    what: What,
}

enum What {
    File(PathBuf),
    Element(Element),
    Key(Box<Key>),
}

impl Source {
    /// A key file (`key-*.xml`, `revocation-*.xml`), read (bounded), parsed and checked against
    /// its name on a worker. Reported under its file name.
    pub fn file(path: impl Into<PathBuf>) -> Source {
        let path = path.into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Source {
            name,
            what: What::File(path),
        }
    }

    /// A `<key>` or `<revocation>` element, parsed on a worker.
    pub fn element(name: impl Into<String>, element: Element) -> Source {
        Source {
            name: name.into(),
            what: What::Element(element),
        }
    }

    /// A parsed key.
    pub fn key(name: impl Into<String>, key: Key) -> Source {
        Source {
            name: name.into(),
            what: What::Key(Box::new(key)),
        }
    }

    /// The name the element is reported under.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn load(what: What) -> Result<RingElement> {
        match what {
            What::File(path) => key_file::read_file(&path),
            What::Element(element) => RingElement::from_element(element),
            What::Key(key) => Ok(RingElement::Key(key)),
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        // An unprotected key's element holds its master key in the clear; a parsed `Key` and a
        // file path take care of themselves.
        if let What::Element(element) = &mut self.what {
            zeroize::Zeroize::zeroize(element);
        }
    }
}

impl From<Key> for Source {
    /// Reported as `key-{id}`.
    fn from(key: Key) -> Source {
        Source::key(format!("key-{}", key.id()), key)
    }
}

impl From<StoredElement> for Source {
    /// Reported under its name in the store.
    fn from(stored: StoredElement) -> Source {
        let name = stored.name().to_owned();
        Source::element(name, stored.into_element())
    }
}

impl From<PathBuf> for Source {
    fn from(path: PathBuf) -> Source {
        Source::file(path)
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.what {
            What::File(_) => "file",
            What::Element(_) => "element",
            What::Key(_) => "key",
        };
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("what", &what)
            .finish()
    }
}

/// Every `*.xml` file directly in `dir`, in file-name order, as sources: the files the
/// directory store reads, listed now and read only when their turn comes. A missing or
/// unreadable directory is an error.
pub fn directory(dir: &Path) -> Result<impl Iterator<Item = Source> + use<>> {
    let paths = crate::store::directory::list_xml_files(dir)?;
    Ok(paths.into_iter().map(Source::file))
}

/// What became of one element of the ring.
pub struct Decrypted {
    /// The element's position in the input (0-based).
    pub index: usize,
    /// The name the source was given (a file name for files).
    pub name: String,
    /// The key and its master key, the revocation, or why the element could not be read.
    pub outcome: Outcome,
}

/// What an element turned out to be, and for a key, its master key.
pub enum Outcome {
    /// A key, with its master key or why it could not be decrypted.
    Key {
        /// The parsed key.
        key: Box<Key>,
        /// The master key, or the decryption error.
        master_key: Result<MasterKey>,
    },
    /// A revocation (nothing to decrypt).
    Revocation(key_file::Revocation),
    /// The element could not be read or parsed.
    Unreadable(Error),
}

impl Decrypted {
    /// The key, if the element is one.
    pub fn key(&self) -> Option<&Key> {
        match &self.outcome {
            Outcome::Key { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The master key, when the element is a key that decrypted.
    pub fn master_key(&self) -> Option<&MasterKey> {
        match &self.outcome {
            Outcome::Key {
                master_key: Ok(m), ..
            } => Some(m),
            _ => None,
        }
    }

    /// Why the element yielded no master key: the decryption or read error (`None` for a key
    /// that decrypted and for a revocation).
    pub fn error(&self) -> Option<&Error> {
        match &self.outcome {
            Outcome::Key {
                master_key: Err(e), ..
            }
            | Outcome::Unreadable(e) => Some(e),
            _ => None,
        }
    }

    /// Takes the master key out, or the error (a revocation is an error of kind
    /// [`ErrorKind::Format`] here).
    pub fn into_master_key(self) -> Result<MasterKey> {
        match self.outcome {
            Outcome::Key { master_key, .. } => master_key,
            Outcome::Unreadable(e) => Err(e),
            Outcome::Revocation(_) => Err(Error::format(
                "the element is a revocation, not a key; it has no master key",
            )),
        }
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = match &self.outcome {
            Outcome::Key {
                key,
                master_key: Ok(_),
            } => format!("key {} decrypted", key.id()),
            Outcome::Key {
                key,
                master_key: Err(e),
            } => format!("key {}: {e}", key.id()),
            Outcome::Revocation(_) => "revocation".to_owned(),
            Outcome::Unreadable(e) => format!("unreadable: {e}"),
        };
        f.debug_struct("Decrypted")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("outcome", &outcome)
            .finish()
    }
}

/// Decrypts every element of `sources` with `decryptors` (see the [module](self) docs). Nothing
/// is read until the stream is polled.
pub fn decrypt<I>(
    sources: I,
    decryptors: &Decryptors,
    options: &RingOptions,
) -> RingDecrypt<I::IntoIter>
where
    I: IntoIterator,
    I::Item: Into<Source>,
{
    let parallelism = options.parallelism;
    RingDecrypt {
        input: Some(sources.into_iter()),
        decryptors: Arc::new((decryptors.clone(), options.gate.clone())),
        parallelism,
        concurrency: options.concurrency.max(1),
        ordered: options.ordered,
        shared: Arc::new(Shared {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                done: VecDeque::new(),
                woken: vec![Vec::new(); parallelism],
                driver: None,
                closed: false,
            }),
            work: Condvar::new(),
        }),
        workers: 0,
        inline: Vec::new(),
        ready: VecDeque::new(),
        reorder: BTreeMap::new(),
        next_index: 0,
        next_out: 0,
        in_flight: 0,
        context: RuntimeContext::capture(),
    }
}

/// The stream of a ring being decrypted: [`Decrypted`] values, as an async stream
/// ([`next_async`](Self::next_async), [`poll_next`](Self::poll_next)) or a blocking
/// [`Iterator`]. Dropping it cancels what is left.
pub struct RingDecrypt<I> {
    input: Option<I>,
    decryptors: Arc<Work>,
    parallelism: usize,
    concurrency: usize,
    ordered: bool,
    shared: Arc<Shared>,
    workers: usize,
    /// Tasks polled by the stream itself (parallelism 0, or no thread could be started).
    inline: Vec<Slot>,
    /// Finished, for unordered output.
    ready: VecDeque<Decrypted>,
    /// Finished, by index, for ordered output.
    reorder: BTreeMap<usize, Decrypted>,
    next_index: usize,
    next_out: usize,
    /// Handed out and not yet yielded.
    in_flight: usize,
    context: RuntimeContext,
}

impl<I> RingDecrypt<I>
where
    I: Iterator,
    I::Item: Into<Source>,
{
    /// The next result, or `None` when every element has been yielded.
    pub async fn next_async(&mut self) -> Option<Decrypted> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next result (the `Stream::poll_next` contract: `Ready(None)` at the end).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Decrypted>> {
        while self.in_flight < self.concurrency {
            let Some(input) = self.input.as_mut() else {
                break;
            };
            match input.next() {
                Some(source) => self.dispatch(source.into()),
                None => self.input = None,
            }
        }

        let mut i = 0;
        while let Some(slot) = self.inline.get_mut(i) {
            match slot.poll(cx) {
                Poll::Ready(d) => {
                    self.inline.swap_remove(i);
                    self.ready.push_back(d);
                }
                Poll::Pending => i += 1,
            }
        }

        {
            let mut state = self.shared.lock();
            self.ready.extend(state.done.drain(..));
            if self.ordered {
                for d in self.ready.drain(..) {
                    self.reorder.insert(d.index, d);
                }
            }
            if !self.has_next() && self.in_flight > 0 {
                state.driver = Some(cx.waker().clone());
            }
        }

        let next = if self.ordered {
            let next = self.reorder.remove(&self.next_out);
            if next.is_some() {
                self.next_out += 1;
            }
            next
        } else {
            self.ready.pop_front()
        };
        match next {
            Some(d) => {
                self.in_flight -= 1;
                Poll::Ready(Some(d))
            }
            None if self.in_flight == 0 && self.input.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    fn has_next(&self) -> bool {
        if self.ordered {
            self.reorder.contains_key(&self.next_out)
        } else {
            !self.ready.is_empty()
        }
    }

    fn dispatch(&mut self, source: Source) {
        let index = self.next_index;
        self.next_index += 1;
        self.in_flight += 1;
        if self.parallelism == 0 {
            self.inline
                .push(Slot::new(index, source, Arc::clone(&self.decryptors)));
            return;
        }
        self.shared.lock().jobs.push_back((index, source));
        self.shared.work.notify_one();
        // A worker per element until there are `parallelism` of them: a three-key ring starts
        // three threads, not sixty-four.
        if self.workers < self.parallelism && self.workers < self.next_index {
            self.spawn_worker();
        }
    }

    fn spawn_worker(&mut self) {
        let shared = Arc::clone(&self.shared);
        let decryptors = Arc::clone(&self.decryptors);
        let context = self.context.clone();
        let me = self.workers;
        let spawned = std::thread::Builder::new()
            .name(format!("dpwrap-ring-{me}"))
            .spawn(move || worker(&shared, me, &decryptors, &context));
        match spawned {
            Ok(_) => self.workers += 1,
            Err(_) if self.workers == 0 => {
                // No thread at all: decrypt on the polling task rather than fail.
                self.parallelism = 0;
                let jobs: Vec<(usize, Source)> = self.shared.lock().jobs.drain(..).collect();
                for (index, source) in jobs {
                    self.inline
                        .push(Slot::new(index, source, Arc::clone(&self.decryptors)));
                }
            }
            // Fewer threads than asked for: the ones running take the whole queue.
            Err(_) => self.parallelism = self.workers,
        }
    }
}

impl<I> Iterator for RingDecrypt<I>
where
    I: Iterator,
    I::Item: Into<Source>,
{
    type Item = Decrypted;

    /// Blocks the calling thread until the next result. Not for use inside an async runtime
    /// whose decryptors need that runtime's thread (use [`RingDecrypt::next_async`] there).
    fn next(&mut self) -> Option<Decrypted> {
        block_on(std::future::poll_fn(|cx| self.poll_next(cx)))
    }
}

impl<I> Drop for RingDecrypt<I> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.jobs.clear();
        state.done.clear();
        state.driver = None;
        drop(state);
        self.shared.work.notify_all();
    }
}

impl<I> fmt::Debug for RingDecrypt<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingDecrypt")
            .field("parallelism", &self.parallelism)
            .field("concurrency", &self.concurrency)
            .field("ordered", &self.ordered)
            .field("workers", &self.workers)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// What the stream and its workers share, under one lock (held only to move work and results,
/// never while decrypting).
struct Shared {
    state: Mutex<State>,
    /// Workers wait here for an element, a woken task, or the end.
    work: Condvar,
}

struct State {
    jobs: VecDeque<(usize, Source)>,
    done: VecDeque<Decrypted>,
    /// Per worker: ids of its waiting tasks whose wakers fired.
    woken: Vec<Vec<u64>>,
    /// The waker of the task polling the stream.
    driver: Option<Waker>,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock (decryption runs outside it, and panics
        // inside it are caught), so a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, decrypted: Decrypted) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.done.push_back(decrypted);
        let driver = state.driver.take();
        drop(state);
        if let Some(w) = driver {
            w.wake();
        }
    }
}

type Task = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// One element being decrypted.
struct Slot {
    index: usize,
    name: String,
    task: Task,
}

impl Slot {
    fn new(index: usize, mut source: Source, work: Arc<Work>) -> Slot {
        let name = std::mem::take(&mut source.name);
        let task: Task = Box::pin(async move {
            // Taken out only now: until then the source's drop wipes an element never read.
            let what = std::mem::replace(&mut source.what, What::File(PathBuf::new()));
            match Source::load(what) {
                Ok(RingElement::Key(key)) => {
                    let (decryptors, gate) = &*work;
                    let master_key = match gate.as_ref().map(|g| (g.0)(&key)) {
                        Some(Err(refused)) => Err(refused),
                        _ => key.master_key(decryptors).await,
                    };
                    Outcome::Key { key, master_key }
                }
                Ok(RingElement::Revocation(r)) => Outcome::Revocation(r),
                Err(e) => Outcome::Unreadable(e),
            }
        });
        Slot { index, name, task }
    }

    /// Polls the task; a panic in a decryptor becomes this element's error instead of taking
    /// the stream down with it.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Decrypted> {
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| self.task.as_mut().poll(cx)));
        let outcome = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(outcome)) => outcome,
            Err(_) => Outcome::Unreadable(Error::new(
                ErrorKind::Backend,
                "internal error: the decryptor panicked on this element; please report it",
            )),
        };
        Poll::Ready(Decrypted {
            index: self.index,
            name: std::mem::take(&mut self.name),
            outcome,
        })
    }
}

/// Wakes one waiting task of one worker.
struct TaskWaker {
    shared: Arc<Shared>,
    worker: usize,
    task: u64,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.shared.lock();
        if let Some(woken) = state.woken.get_mut(self.worker) {
            woken.push(self.task);
        }
        drop(state);
        self.shared.work.notify_all();
    }
}

/// A worker: takes elements, polls their tasks, keeps the ones that wait, polls them again when
/// woken, until the stream is dropped.
fn worker(shared: &Arc<Shared>, me: usize, decryptors: &Arc<Work>, context: &RuntimeContext) {
    let _entered = context.enter();
    // Declared after the runtime guard so that waiting tasks are dropped inside the runtime.
    let mut waiting: Vec<(u64, Slot)> = Vec::new();
    let mut next_id: u64 = 0;
    enum Next {
        Start(usize, Source),
        Poll(Vec<u64>),
        Exit,
    }
    loop {
        let next = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    break Next::Exit;
                }
                let woken = state
                    .woken
                    .get_mut(me)
                    .map(std::mem::take)
                    .unwrap_or_default();
                if !woken.is_empty() {
                    break Next::Poll(woken);
                }
                if let Some((index, source)) = state.jobs.pop_front() {
                    break Next::Start(index, source);
                }
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        match next {
            Next::Exit => return,
            Next::Start(index, source) => {
                let id = next_id;
                next_id = next_id.wrapping_add(1);
                let mut slot = Slot::new(index, source, Arc::clone(decryptors));
                let waker = task_waker(shared, me, id);
                match slot.poll(&mut Context::from_waker(&waker)) {
                    Poll::Ready(d) => shared.finish(d),
                    Poll::Pending => waiting.push((id, slot)),
                }
            }
            Next::Poll(ids) => {
                for id in ids {
                    let Some(pos) = waiting.iter().position(|(t, _)| *t == id) else {
                        continue; // finished already, or woken twice
                    };
                    let waker = task_waker(shared, me, id);
                    let polled = waiting
                        .get_mut(pos)
                        .map(|(_, slot)| slot.poll(&mut Context::from_waker(&waker)));
                    if let Some(Poll::Ready(d)) = polled {
                        waiting.swap_remove(pos);
                        shared.finish(d);
                    }
                }
            }
        }
    }
}

fn task_waker(shared: &Arc<Shared>, worker: usize, task: u64) -> Waker {
    Waker::from(Arc::new(TaskWaker {
        shared: Arc::clone(shared),
        worker,
        task,
    }))
}

/// Wakes a thread parked in [`block_on`].
struct ThreadWaker {
    thread: std::thread::Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Runs a future to completion on the calling thread.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let signal = Arc::new(ThreadWaker {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&signal));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        while !signal.woken.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }
}

/// The async runtime the workers enter, so that decryptors built on it (sockets, timers) work
/// on the worker threads.
#[derive(Clone)]
struct RuntimeContext {
    #[cfg(any(feature = "azure", feature = "redis", feature = "test-util"))]
    tokio: Option<tokio::runtime::Handle>,
}

impl RuntimeContext {
    fn capture() -> RuntimeContext {
        RuntimeContext {
            #[cfg(any(feature = "azure", feature = "redis", feature = "test-util"))]
            tokio: tokio::runtime::Handle::try_current().ok(),
        }
    }

    #[cfg(any(feature = "azure", feature = "redis", feature = "test-util"))]
    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.tokio.as_ref().map(tokio::runtime::Handle::enter)
    }

    /// Without tokio there is nothing to enter.
    #[cfg(not(any(feature = "azure", feature = "redis", feature = "test-util")))]
    fn enter(&self) -> Option<std::convert::Infallible> {
        None
    }
}
