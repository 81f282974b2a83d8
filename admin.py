"""The editorial desk (being written): installs its routes on the app."""


def install(app):
    pass
