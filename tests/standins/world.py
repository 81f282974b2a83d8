"""Everything the pipeline talks to (model, five image APIs, three news sites), wired into a config."""

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
        return self

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
