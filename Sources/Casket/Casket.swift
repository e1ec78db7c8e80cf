// The error type and errno of the system layer are part of Casket's public API.
@_exported public import CasketSystem
