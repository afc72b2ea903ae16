//! A real card in a reader slot: the `card` crate's [`Card`] with the randomness the host
//! provides (the operating system's), plugged into the transports through [`CardSlot`].

use std::path::Path;

use card::nvm::Nvm;
use card::Card;
use crypto::OsRng;

use crate::{CardDir, CardSlot, HostError, PowerEvent, SealedFileNvm, SealingKey};

/// A card and its host's random number generator.
pub struct HostedCard<N: Nvm> {
    card: Card<N>,
    rng: OsRng,
}

impl HostedCard<SealedFileNvm> {
    /// Creates a card directory and manufactures a blank card in it, with room for a state
    /// image of `image_capacity` bytes (`card::DEFAULT_IMAGE_CAPACITY` is the usual choice).
    pub fn create(dir: &Path, key: &SealingKey, image_capacity: usize) -> Result<Self, HostError> {
        let nvm = CardDir::create(
            dir,
            key,
            Card::<SealedFileNvm>::nvm_size_for(image_capacity),
        )?;
        Ok(Self::new(Card::manufacture(nvm, image_capacity)?))
    }

    /// Powers up the card in `dir` (recovering an interrupted command, CARD-2).
    pub fn open(dir: &Path, key: &SealingKey) -> Result<Self, HostError> {
        Ok(Self::new(Card::boot(CardDir::open(dir, key)?)?))
    }
}

impl<N: Nvm> HostedCard<N> {
    pub fn new(card: Card<N>) -> Self {
        HostedCard { card, rng: OsRng }
    }

    pub fn card(&self) -> &Card<N> {
        &self.card
    }

    pub fn into_card(self) -> Card<N> {
        self.card
    }
}

impl<N: Nvm> CardSlot for HostedCard<N> {
    fn atr(&mut self) -> Vec<u8> {
        self.card.atr().to_vec()
    }

    fn power(&mut self, _event: PowerEvent) {
        // Off, on and reset all end the card's RAM state; its NVM is untouched.
        self.card.reset();
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.card.transmit(command, &mut self.rng)
    }
}
