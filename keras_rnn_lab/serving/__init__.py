"""Exporting trained models as SavedModels that serve raw inputs without this
package (`export`)."""
