<article class="item{{' item-deal' if article['type'] == 'deal' else ''}}">
  % thumb = image_src(article['image_thumb_url']) or image_src(article['image_url'])
  % if thumb:
  <a class="item-image" href="/articles/{{article['slug']}}" tabindex="-1" aria-hidden="true"><img src="{{thumb}}" alt="{{article['image_alt'] or article['title']}}" loading="lazy" width="320" height="200"></a>
  % end
  <div class="item-text">
    <p class="meta"><span class="tag tag-{{article['type']}}">{{'Deal' if article['type'] == 'deal' else article['type'].capitalize()}}</span> <time datetime="{{article['published_at']}}">{{format_date(article['published_at'])}}</time></p>
    <h2><a href="/articles/{{article['slug']}}">{{article['title']}}</a></h2>
    <p>{{article['tldr']}}</p>
  </div>
</article>
