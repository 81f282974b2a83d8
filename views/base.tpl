<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{page_title if page_title == site['title'] else page_title + ' · ' + site['title']}}</title>
<meta name="description" content="{{description}}">
<link rel="canonical" href="{{canonical}}">
<meta property="og:site_name" content="{{site['title']}}">
<meta property="og:title" content="{{page_title}}">
<meta property="og:description" content="{{description}}">
<meta property="og:type" content="{{og_type}}">
<meta property="og:url" content="{{canonical}}">
% if og_image:
<meta property="og:image" content="{{og_image}}">
% end
<link rel="alternate" type="application/atom+xml" title="{{site['title']}}" href="/feed.xml">
<link rel="stylesheet" href="{{static_url('style.css')}}">
<link rel="icon" href="{{static_url('favicon.svg')}}" type="image/svg+xml">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site-header">
  <div class="wrap header-row">
    <a class="brand" href="/">{{site['title']}}</a>
    <nav aria-label="Main">
      <ul>
        <li><a href="/" {{!'aria-current="page"' if path == '/' else ''}}>Latest</a></li>
        <li><a href="/deals" {{!'aria-current="page"' if path == '/deals' else ''}}>Deals</a></li>
        <li><a href="/news" {{!'aria-current="page"' if path == '/news' else ''}}>News</a></li>
        <li><a href="/cards" {{!'aria-current="page"' if path.startswith('/cards') else ''}}>Cards</a></li>
      </ul>
    </nav>
  </div>
</header>
<main id="main" class="wrap">
{{!base}}
</main>
<footer class="site-footer">
  <div class="wrap">
    <p>{{site['title']}} — points and miles news, every article reviewed by an editor before it is published. Card facts are checked on the date shown on each card; confirm terms with the issuer before you apply.</p>
    <p><a href="/feed.xml">Atom feed</a> · <a href="/cards">All cards</a> · <a href="/sitemap.xml">Sitemap</a></p>
  </div>
</footer>
</body>
</html>
