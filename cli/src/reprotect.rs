//! Re-protecting key elements (`protect`, `rewrap`): decrypt with the old material, encrypt with
//! the target, verify the result decrypts to the same master key, and only then hand the element
//! to the store, in place (through `replace`, atomic per element or per store) or appended to
//! another store.

use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use uuid::Uuid;

use dpwrap::envelope::{self, has_secrets_to_encrypt};
use dpwrap::key_file::{is_known_deserializer, master_key_of};
use dpwrap::store::copy::contains;
use dpwrap::store::{Addition, Change, StoredElement, friendly_name_of};
use dpwrap::xml::{Element, NS_DP, Name, Node};
use dpwrap::{Decryptors, Key, Protection, SecretElement};

use crate::authentication::{Signer, strip_proof};
use crate::fail::{Fail, Outcome};
use crate::stores::Opened;
use crate::target::Target;

/// Re-protects elements with a target.
pub struct Reprotector {
    /// Decrypts the old protection.
    pub read: Decryptors,
    /// The new protection.
    pub target: Target,
    /// Touch only unprotected (`none`) and null-protected keys (`protect`).
    pub only_unprotected: bool,
    /// Leave keys only Windows can decrypt (DPAPI, DPAPI-NG) as they are instead of failing.
    pub leave_windows_only: bool,
    /// Keys re-protected at once.
    pub concurrency: usize,
    /// Signs every key written (`--sign-with`).
    pub signer: Option<Signer>,
}

/// What happens to one element.
pub enum Plan {
    /// Left as it is (a revocation, another element, a key already protected as wanted).
    Leave,
    /// Re-protected.
    Reprotect {
        /// The key id.
        id: Uuid,
        /// Its protection now.
        from: Protection,
    },
}

impl Reprotector {
    /// What would happen to `element`, without decrypting anything.
    pub fn plan(&self, element: &Element) -> dpwrap::Result<Plan> {
        if !element.is(None, "key") {
            return Ok(Plan::Leave);
        }
        let key = Key::from_element(element.clone())?;
        if self.only_unprotected && !key.protection().is_unprotected() {
            return Ok(Plan::Leave);
        }
        if self.leave_windows_only
            && matches!(key.protection(), Protection::Dpapi | Protection::DpapiNg)
        {
            eprintln!(
                "dpwrap: warning: key {} is protected with Windows {}: left as it is (--leave-windows-only); only Windows can decrypt it",
                key.id(),
                if key.protection() == Protection::Dpapi {
                    "DPAPI"
                } else {
                    "DPAPI-NG"
                }
            );
            return Ok(Plan::Leave);
        }
        // With a signer, a key protected as wanted but not signed by it is written again, signed.
        if self.target.already_protects(&key) && self.signer.as_ref().is_none_or(|s| s.signed(&key))
        {
            return Ok(Plan::Leave);
        }
        Ok(Plan::Reprotect {
            id: key.id(),
            from: key.protection(),
        })
    }

    /// Checks that the old material decrypts `element` (for a dry run).
    pub async fn check(&self, element: &Element) -> dpwrap::Result<()> {
        let key = Key::from_element(element.clone())?;
        if let Some(signer) = &self.signer {
            signer
                .refuse_altered(&key)
                .map_err(|e| e.context(format!("key {}", key.id())))?;
        }
        key.master_key(&self.read)
            .await
            .map(|_| ())
            .map_err(|e| e.context(format!("key {}", key.id())))
    }

    /// The key element protected with the target, verified to decrypt to the same master key.
    pub async fn reprotect(&self, element: &Element) -> dpwrap::Result<Element> {
        let key = Key::from_element(element.clone())?;
        let id = key.id();
        self.reprotect_key(&key).await.map_err(|e| {
            let e = if e.kind() == dpwrap::ErrorKind::WindowsOnly && !self.leave_windows_only {
                dpwrap::Error::new(
                    e.kind(),
                    format!(
                        "{}; or pass --leave-windows-only to leave such keys as they are",
                        e.message()
                    ),
                )
            } else {
                e
            };
            e.context(format!("key {id}"))
        })
    }

    async fn reprotect_key(&self, key: &Key) -> dpwrap::Result<Element> {
        if let Some(signer) = &self.signer {
            signer.refuse_altered(key)?;
        }
        if !is_known_deserializer(key.deserializer_type()) {
            // master_key gives the precise error for an unknown descriptor.
            key.master_key(&self.read).await?;
        }
        let descriptor = key.decrypt_descriptor(&self.read).await?;
        let master = master_key_of(descriptor.expose())?;
        let mut clear = SecretElement::new(key.element().clone());
        // The proof covers the ciphertext: re-protected, the key is signed again or not at all.
        if strip_proof(clear.expose_mut()) && self.signer.is_none() {
            eprintln!(
                "dpwrap: warning: key {} was authenticated; re-protected without --sign-with it no longer is (readers that require authenticated keys will refuse it)",
                key.id()
            );
        }
        let path = inner_descriptor_path(clear.expose()).ok_or_else(|| {
            dpwrap::Error::new(dpwrap::ErrorKind::Format, "the key has no descriptor")
        })?;
        if let Some(Node::Element(mut old)) = clear
            .expose_mut()
            .replace_at(&path, Node::Element(descriptor.expose().clone()))
        {
            zeroize::Zeroize::zeroize(&mut old);
        }
        if !has_secrets_to_encrypt(clear.expose()) {
            mark_master_keys(clear.expose_mut());
        }
        let mut new = envelope::encrypt_if_necessary(self.target.encryptor(), clear.expose())
            .await?
            .ok_or_else(|| {
                dpwrap::Error::new(
                    dpwrap::ErrorKind::Format,
                    "the key's descriptor has no master key to protect",
                )
            })?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut new).await?;
        }
        self.target.verify(&new, &master).await?;
        Ok(new)
    }

    /// Re-protects `elements` (at most `concurrency` at once), in order, or fails with the first
    /// error (each error names its element with `names`).
    pub async fn reprotect_all(
        &self,
        elements: Vec<(&Element, String)>,
    ) -> dpwrap::Result<Vec<Element>> {
        stream::iter(elements.into_iter().map(|(element, name)| async move {
            self.reprotect(element).await.map_err(|e| e.context(name))
        }))
        .buffered(self.concurrency.max(1))
        .try_collect()
        .await
    }
}

/// The path of the inner descriptor (`key/descriptor/*[1]`).
fn inner_descriptor_path(key: &Element) -> Option<Vec<usize>> {
    let (outer_index, outer) = key
        .children()
        .iter()
        .enumerate()
        .find_map(|(i, n)| match n {
            Node::Element(e) if e.is(None, "descriptor") => Some((i, e)),
            _ => None,
        })?;
    let inner_index = outer
        .children()
        .iter()
        .position(|n| matches!(n, Node::Element(_)))?;
    Some(vec![outer_index, inner_index])
}

/// Marks every `masterKey` `requiresEncryption`, for a decrypted descriptor whose writer did not
/// keep the mark.
fn mark_master_keys(element: &mut Element) {
    let paths = element.paths_where(&mut |e| e.is(None, "masterKey"));
    for path in paths {
        if let Some(m) = element.at_mut(&path) {
            m.set_attribute(Name::prefixed("p4", NS_DP, "requiresEncryption"), "true");
        }
    }
}

/// What an in-place or copying run did.
#[derive(Default)]
pub struct Summary {
    /// Elements re-protected (or that would be).
    pub reprotected: usize,
    /// Elements left as they were.
    pub left: usize,
    /// Elements copied as they are (with `--out`).
    pub copied: usize,
    /// Elements already in the destination (with `--out`).
    pub skipped: usize,
}

fn selected<'a>(opened: &Opened, loaded: &'a [StoredElement]) -> Outcome<Vec<&'a StoredElement>> {
    let out: Vec<&StoredElement> = loaded
        .iter()
        .filter(|s| opened.only.as_deref().is_none_or(|only| s.name() == only))
        .collect();
    if let (Some(only), true) = (&opened.only, out.is_empty()) {
        return Err(Fail::run(format!(
            "{}: the file is no longer in the ring",
            opened.naming.of(only)
        )));
    }
    Ok(out)
}

/// Re-protects the elements of `opened` in place. Nothing is written unless every element to
/// change was re-protected and verified; the store then swaps them atomically (per element for a
/// directory, as a whole for the other stores).
pub async fn in_place(
    opened: &Opened,
    r: &Reprotector,
    dry_run: bool,
    (verb, done): (&str, &str),
) -> Outcome<Summary> {
    let store_name = opened.naming.store();
    let loaded = opened
        .store
        .load()
        .await
        .map_err(|e| Fail::from(e).context(&store_name))?;
    let mut summary = Summary::default();
    let mut todo: Vec<(&StoredElement, Uuid, Protection)> = Vec::new();
    for s in selected(opened, &loaded)? {
        match r
            .plan(s.element())
            .map_err(|e| Fail::from(e).context(opened.naming.of(s.name())))?
        {
            Plan::Leave => summary.left += 1,
            Plan::Reprotect { id, from } => todo.push((s, id, from)),
        }
    }
    let to = r.target.protection();
    if dry_run {
        for (s, id, from) in &todo {
            let file = opened.naming.of(s.name());
            r.check(s.element())
                .await
                .map_err(|e| Fail::from(e).context(&file))?;
            println!("would {verb} {file} (key {id}, {from} -> {to})");
            summary.reprotected += 1;
        }
        return Ok(summary);
    }
    let news = r
        .reprotect_all(
            todo.iter()
                .map(|(s, _, _)| (s.element(), opened.naming.of(s.name())))
                .collect(),
        )
        .await?;
    let changes: Vec<Change<'_>> = todo
        .iter()
        .zip(news)
        .map(|((old, _, _), new)| Change { old, new })
        .collect();
    if !changes.is_empty() {
        opened
            .store
            .replace(&changes)
            .await
            .map_err(|e| Fail::from(e).context(&store_name))?;
    }
    for (s, id, from) in &todo {
        println!(
            "{done} {} (key {id}, {from} -> {to})",
            opened.naming.of(s.name())
        );
        summary.reprotected += 1;
    }
    Ok(summary)
}

/// Re-protects the elements of `src` into `dest`, leaving `src` untouched: every element `dest`
/// lacks (keys by id, anything else by content) is appended, re-protected when it is a key not
/// yet protected with the target, as it is otherwise (revocations). Nothing is appended unless
/// every key was re-protected and verified.
pub async fn to_store(
    src: &Opened,
    dest: &Opened,
    r: &Reprotector,
    dry_run: bool,
) -> Outcome<Summary> {
    let from = src
        .store
        .load()
        .await
        .map_err(|e| Fail::from(e).context(src.naming.store()))?;
    let to = dest
        .store
        .load()
        .await
        .map_err(|e| Fail::from(e).context(dest.naming.store()))?;
    let present: Vec<&Element> = to.iter().map(StoredElement::element).collect();
    let dest_name = dest.naming.store();
    let target = r.target.protection();

    enum Action<'a> {
        Reprotect(&'a StoredElement, Uuid, Protection),
        Copy(&'a StoredElement),
    }
    let mut summary = Summary::default();
    let mut actions: Vec<Action<'_>> = Vec::new();
    let mut taken: Vec<&Element> = Vec::new();
    for s in selected(src, &from)? {
        let e = s.element();
        if contains(&present, e) || contains(&taken, e) {
            summary.skipped += 1;
            println!(
                "skipped {} (already in {dest_name})",
                src.naming.of(s.name())
            );
            continue;
        }
        taken.push(e);
        match r
            .plan(e)
            .map_err(|err| Fail::from(err).context(src.naming.of(s.name())))?
        {
            Plan::Reprotect { id, from } => actions.push(Action::Reprotect(s, id, from)),
            Plan::Leave => actions.push(Action::Copy(s)),
        }
    }
    let mut additions = Vec::new();
    if dry_run {
        for a in &actions {
            match a {
                Action::Reprotect(s, id, from) => {
                    let file = src.naming.of(s.name());
                    r.check(s.element())
                        .await
                        .map_err(|e| Fail::from(e).context(&file))?;
                    println!("would rewrap {file} into {dest_name} (key {id}, {from} -> {target})");
                    summary.reprotected += 1;
                }
                Action::Copy(s) => {
                    println!("would copy {} into {dest_name}", src.naming.of(s.name()));
                    summary.copied += 1;
                }
            }
        }
        return Ok(summary);
    }
    let mut news = r
        .reprotect_all(
            actions
                .iter()
                .filter_map(|a| match a {
                    Action::Reprotect(s, _, _) => Some((s.element(), src.naming.of(s.name()))),
                    Action::Copy(_) => None,
                })
                .collect(),
        )
        .await?
        .into_iter();
    for a in &actions {
        let (element, original) = match a {
            Action::Reprotect(s, _, _) => (
                news.next()
                    .ok_or_else(|| Fail::run("internal error: a key went missing"))?,
                s.element(),
            ),
            Action::Copy(s) => (s.element().clone(), s.element()),
        };
        let name = friendly_name_of(original).unwrap_or_default();
        additions.push(Addition::new(element, name));
    }
    if !additions.is_empty() {
        dest.store
            .append(&additions)
            .await
            .map_err(|e| Fail::from(e).context(&dest_name))?;
    }
    for a in &actions {
        match a {
            Action::Reprotect(s, id, from) => {
                println!(
                    "rewrapped {} into {dest_name} (key {id}, {from} -> {target})",
                    src.naming.of(s.name())
                );
                summary.reprotected += 1;
            }
            Action::Copy(s) => {
                println!("copied {} into {dest_name}", src.naming.of(s.name()));
                summary.copied += 1;
            }
        }
    }
    Ok(summary)
}
