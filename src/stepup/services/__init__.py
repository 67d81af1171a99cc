"""Use cases. Each public function is one transaction: state and audit commit together."""
