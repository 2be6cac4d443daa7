"""The sweep report: built from trials (`build`), read from MLflow and logged back to
the parent run (`mlflow`)."""
