//! New keys, exactly as .NET's `XmlKeyManager` writes them: an `AES_256_CBC` + `HMACSHA256`
//! descriptor holding 64 random bytes, created now, active from the activation date, expiring
//! after the key lifetime (90 days by default).

use time::Duration;
use uuid::Uuid;

use crate::envelope;
use crate::error::{Error, Result};
use crate::protector::XmlEncryptor;
use crate::secret::{MasterKey, SecretElement};
use crate::timestamp::Timestamp;
use crate::xml::{Element, NS_DP, Name};

/// The deserializer type .NET 8 writes on a new key's descriptor.
pub const DESERIALIZER_TYPE: &str = "Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel.AuthenticatedEncryptorDescriptorDeserializer, Microsoft.AspNetCore.DataProtection, Version=8.0.0.0, Culture=neutral, PublicKeyToken=adb9793829ddae60";

/// The master key length .NET generates (bytes).
pub const MASTER_KEY_LEN: usize = 64;

/// .NET's default key lifetime: 90 days.
pub const DEFAULT_LIFETIME: Duration = Duration::days(90);

/// The dates and id of a key to create.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// The key id.
    pub id: Uuid,
    /// When the key was created.
    pub creation: Timestamp,
    /// When it becomes the default key.
    pub activation: Timestamp,
    /// When it stops being used for new data.
    pub expiration: Timestamp,
}

impl NewKey {
    /// A key with a fresh id, created now, active from `activation` (now when `None`), expiring
    /// `lifetime` after its activation.
    pub fn new(activation: Option<Timestamp>, lifetime: Duration) -> Result<NewKey> {
        if !lifetime.is_positive() {
            return Err(Error::config("the key lifetime must be positive"));
        }
        let creation = Timestamp::now();
        let activation = activation.unwrap_or_else(|| creation.clone());
        let expiration = activation.checked_add(lifetime).ok_or_else(|| {
            Error::config("the activation date plus the lifetime is out of range")
        })?;
        Ok(NewKey {
            id: Uuid::new_v4(),
            creation,
            activation,
            expiration,
        })
    }

    /// The `<key>` element with `master_key` in the clear (the `masterKey` marked
    /// `requiresEncryption`, as .NET builds it before its encryptor runs).
    pub fn to_element(&self, master_key: &MasterKey) -> SecretElement {
        let date =
            |name: &str, t: &Timestamp| Element::new(Name::local(name)).with_text(t.as_str());
        let b64 = master_key.to_base64();
        let master = Element::new(Name::local("masterKey"))
            .with_attribute(Name::prefixed("p4", NS_DP, "requiresEncryption"), "true")
            .with_comment(" Warning: the key below is in an unencrypted form. ")
            .with_child(Element::new(Name::local("value")).with_text(b64.as_str()));
        let inner = Element::new(Name::local("descriptor"))
            .with_child(
                Element::new(Name::local("encryption"))
                    .with_attribute(Name::local("algorithm"), "AES_256_CBC"),
            )
            .with_child(
                Element::new(Name::local("validation"))
                    .with_attribute(Name::local("algorithm"), "HMACSHA256"),
            )
            .with_child(master);
        SecretElement::new(
            Element::new(Name::local("key"))
                .with_attribute(Name::local("id"), self.id.to_string())
                .with_attribute(Name::local("version"), "1")
                .with_child(date("creationDate", &self.creation))
                .with_child(date("activationDate", &self.activation))
                .with_child(date("expirationDate", &self.expiration))
                .with_child(
                    Element::new(Name::local("descriptor"))
                        .with_attribute(Name::local("deserializerType"), DESERIALIZER_TYPE)
                        .with_child(inner),
                ),
        )
    }

    /// The key element protected by `encryptor`, ready for a store. The master key is wiped
    /// with the intermediate element.
    pub async fn protect(
        &self,
        master_key: &MasterKey,
        encryptor: &dyn XmlEncryptor,
    ) -> Result<Element> {
        let clear = self.to_element(master_key);
        envelope::encrypt_if_necessary(encryptor, clear.expose())
            .await?
            .ok_or_else(|| Error::format("internal error: a new key has no element to encrypt"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_lifetime() {
        let k = NewKey::new(None, DEFAULT_LIFETIME).unwrap();
        assert_eq!(k.creation.datetime(), k.activation.datetime());
        assert_eq!(
            k.expiration.datetime() - k.activation.datetime(),
            Duration::days(90)
        );
        assert!(NewKey::new(None, Duration::ZERO).is_err());
    }
}
