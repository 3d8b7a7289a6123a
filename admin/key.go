package admin

// SetKey replaces the admin key at run time (the config file reload), for
// requests that start afterwards. An empty key opens the API to loopback
// clients only, as at start.
func (a *API) SetKey(key string) { a.keyOverride.Store(&key) }

// currentKey is the key requests are checked against.
func (a *API) currentKey() string {
	if k := a.keyOverride.Load(); k != nil {
		return *k
	}
	return a.Key
}
