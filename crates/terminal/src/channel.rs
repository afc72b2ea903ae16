//! Channels that carry APDU bytes to a card.

use card::nvm::Nvm;
use card::Card;
use crypto::Rng;

/// The channel failed to carry an APDU (not a refusal by the card: that is a status word).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("card channel: {detail}")]
    Transport { detail: String },
}

/// Carries one command APDU to a card and returns its response APDU (data + SW1 SW2).
pub trait CardChannel {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError>;
}

/// A card running in this process: the channel owns the card and the randomness it is given.
pub struct InProcessCard<N: Nvm> {
    pub card: Card<N>,
    rng: Box<dyn Rng + Send>,
}

impl<N: Nvm> InProcessCard<N> {
    pub fn new(card: Card<N>, rng: Box<dyn Rng + Send>) -> Self {
        InProcessCard { card, rng }
    }

    pub fn into_card(self) -> Card<N> {
        self.card
    }
}

impl<N: Nvm> CardChannel for InProcessCard<N> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.transmit(command, self.rng.as_mut()))
    }
}

impl<C: CardChannel + ?Sized> CardChannel for &mut C {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit(command)
    }
}

impl<C: CardChannel + ?Sized> CardChannel for Box<C> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit(command)
    }
}
