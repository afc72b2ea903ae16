-- STO-1: where the issuer reaches each provider's server (its base URL, http:// or https://),
-- to forward its SAR and get the provider's SA. NULL: not set, the issuer cannot forward.
ALTER TABLE providers ADD COLUMN url TEXT;
