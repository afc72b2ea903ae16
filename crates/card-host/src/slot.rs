//! The seam between a transport and a card: what a reader can do to the card in its slot.

/// A change of the card's supply as a reader drives it (ISO 7816-3 §6: activation, cold/warm
/// reset, deactivation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerEvent {
    /// Deactivation: the card loses its volatile state.
    Off,
    /// Activation (cold reset).
    On,
    /// Warm reset: volatile state is lost, the card stays powered.
    Reset,
}

/// A card sitting in a reader slot, as the transports see it. The transports never interpret
/// what they carry; everything about APDUs is the card's business.
pub trait CardSlot {
    /// The answer-to-reset the card presents (ISO 7816-3 §8).
    fn atr(&mut self) -> Vec<u8>;
    /// The reader changed the card's supply.
    fn power(&mut self, event: PowerEvent);
    /// One command APDU in, one response APDU (data and status word) out. Never panics,
    /// whatever the bytes.
    fn transmit(&mut self, command: &[u8]) -> Vec<u8>;
}

impl<S: CardSlot + ?Sized> CardSlot for &mut S {
    fn atr(&mut self) -> Vec<u8> {
        (**self).atr()
    }
    fn power(&mut self, event: PowerEvent) {
        (**self).power(event)
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        (**self).transmit(command)
    }
}
