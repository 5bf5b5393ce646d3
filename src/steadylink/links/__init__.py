"""Links: model, code rules, target rules, stores and the link service."""
