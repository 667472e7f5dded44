package core

// CacheLens reports how many users, clients and sessions are cached.
func (s *Service) CacheLens() (users, clients, sessions int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.users.len(), s.clients.len(), s.sessions.len()
}

// ForgetRealmNames drops the list of realm names, as a realm change does
// until the list is read again, so that a test can reach the bounded cache
// of missing names behind it.
func (s *Service) ForgetRealmNames() {
	s.mu.Lock()
	s.realmNames = nil
	s.mu.Unlock()
}
