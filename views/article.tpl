% rebase('base')
<article class="article">
  <header class="article-header">
    <p class="meta"><span class="tag tag-{{article['type']}}">{{'Deal' if article['type'] == 'deal' else article['type'].capitalize()}}</span>
    % if article['published_at']:
    <time datetime="{{article['published_at']}}">{{format_date(article['published_at'])}}</time>
    % end
    </p>
    <h1>{{article['title']}}</h1>
    % if article['tldr']:
    <p class="tldr"><strong>TL;DR</strong> {{article['tldr']}}</p>
    % end
  </header>
  <div class="article-columns">
    <div class="article-body">
      % hero = image_src(article['image_url'])
      % if hero:
      <figure class="hero">
        <img src="{{hero}}" alt="{{article['image_alt'] or article['title']}}">
        % attr = article['image_attribution']
        % if attr:
        <figcaption>
          % include('image_credit', attr=attr)
        </figcaption>
        % end
      </figure>
      % end
      <div class="prose">{{!article['body_html']}}</div>
    </div>
    <aside class="article-side" aria-label="Key facts">
      % if article['key_details']:
      <section class="panel">
        <h2>Key details</h2>
        <dl class="details">
          % for label, value in article['key_details']:
          <dt>{{label}}</dt><dd>{{value}}</dd>
          % end
        </dl>
      </section>
      % end
      % if article['persona_take']:
      <section class="panel take">
        <h2>{{persona}}'s Take</h2>
        <p>{{article['persona_take']}}</p>
      </section>
      % end
      % if linked_cards:
      <section class="panel">
        <h2>Cards in this story</h2>
        <ul class="plain">
          % for card in linked_cards:
          <li><a href="/cards/{{card['slug']}}">{{card['name']}}</a></li>
          % end
        </ul>
      </section>
      % end
      % if article['links']:
      <section class="panel">
        <h2>Links</h2>
        <ul class="plain">
          % for link in article['links']:
          <li>{{!outside_link(link.get('url'), link.get('title'))}}</li>
          % end
        </ul>
      </section>
      % end
      % if article['sources']:
      <section class="panel">
        <h2>Sources</h2>
        <ul class="plain">
          % for source in article['sources']:
          <li>{{!outside_link(source.get('url'), source.get('title'))}}{{' — ' + source['site'] if source.get('site') else ''}}</li>
          % end
        </ul>
      </section>
      % end
      % if hero and article['image_attribution']:
      % attr = article['image_attribution']
      <section class="panel">
        <h2>Image credit</h2>
        <p>
          % include('image_credit', attr=attr)
        </p>
      </section>
      % end
    </aside>
  </div>
</article>
