//! The provider's API types and client (filled in as the routes move here).
