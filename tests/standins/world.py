"""Everything the pipeline talks to (model, five image APIs, three news sites), wired into a config.

The database gets one card whose issuer page is on issuer.example, the domain the
stand-in model links to: articles may link to card issuers' own sites.
"""

import store

from . import use_llm
from .feeds import FeedStandin
from .images import ImageServers
from .openai import OpenAIStandin


class World:
    def __init__(self, config):
        self.config = config
        self.model = OpenAIStandin()
        self.images = ImageServers()
        self.feeds = FeedStandin()

    def __enter__(self):
        self.model.start()
        self.images.__enter__()
        self.feeds.start()
        use_llm(self.config, self.model)
        self.images.configure(self.config)
        self.config["pipeline"]["feeds"] = self.feeds.config_feeds()
        self.seed_issuer_card()
        return self

    def seed_issuer_card(self):
        from helpers import sample_card

        conn = store.connect(self.config["database"]["path"])
        try:
            store.migrate(conn)
            card = sample_card(slug="issuer-card", name="Issuer Card", official_url="https://issuer.example/card")
            card["sources"][0]["url"] = card["official_url"]
            store.seed_cards(conn, [card])
        finally:
            conn.close()

    def __exit__(self, *exc):
        self.model.released.set()
        self.model.stop()
        self.images.__exit__()
        self.feeds.stop()

    def config_file(self, path):
        """The same config as a YAML file, for running pipeline.py as a process."""
        import yaml

        data = {k: v for k, v in self.config.items() if not k.startswith("_")}
        path.write_text(yaml.safe_dump(data))
        return path
